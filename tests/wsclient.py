"""A raw protocol peer for tests: sends frames exactly as PROTOCOL.md writes them.

Deliberately not the client library: these tests check the wire contract
that other people's clients rely on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Reply = dict[str, Any]


#: Every peer a test opened; the autouse fixture in conftest closes them.
OPEN_PEERS: list[Peer] = []


class Peer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        OPEN_PEERS.append(self)
        self.events: asyncio.Queue[Reply] = asyncio.Queue()
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, url: str, *, source: str | None = None,
                      forwarded_for: Sequence[str] = ()) -> Peer:
        """source: the local address to connect from (127.0.0.2 is another client);
        forwarded_for: X-Forwarded-For headers to send, one header each."""
        extra: dict[str, Any] = {"local_addr": (source, 0)} if source else {}
        return cls(await connect(
            url, open_timeout=10, max_size=None,
            additional_headers=[("X-Forwarded-For", value) for value in forwarded_for],
            **extra,
        ))

    async def close(self) -> None:
        await self.ws.close()

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def recv(self, timeout: float = 10.0) -> Reply:
        """The next frame that is not an event (events are queued)."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if "event" in frame:
                self.events.put_nowait(frame)
                continue
            return dict(frame)

    async def request(self, op: str, **args: Any) -> Reply:
        request_id = next(self._ids)
        await self.ws.send(json.dumps({"op": op, "id": request_id, **args}))
        reply = await self.recv()
        assert reply["id"] == request_id, reply
        return reply

    async def ok(self, op: str, **args: Any) -> Reply:
        reply = await self.request(op, **args)
        assert reply["ok"] is True, reply
        return reply

    async def event(self, timeout: float = 10.0) -> Reply:
        """The next event, reading frames until one arrives."""
        if not self.events.empty():
            return self.events.get_nowait()
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert "event" in frame, f"expected an event, got {frame}"
        return dict(frame)

    async def closed_code(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes; the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def register_login(self, name: str, password: str = "correct horse") -> Reply:
        await self.ok("register", username=name, password=password)
        return await self.ok("login", username=name, password=password)

    async def send_message(self, to: str, body: str, msg_id: str | None = None) -> Reply:
        return await self.ok("send", to=to, body=body, msg_id=msg_id or uuid.uuid4().hex)
