"""Client connections for the load generator: our protocol and the socket.io peer.

Both kinds expose the same two shapes so one engine (loadgen.py) drives
either: a Sender that fires sends and reports each reply through a
callback, and a Receiver that reports each pushed message. Frames are
built by hand with orjson: the load generator shares 2 cores with the
servers, so it must stay cheap per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect

#: Called with None for ok, else the error code.
OnReply = Callable[[str | None], None]
#: Called with (msg_id, body) of each pushed message.
OnMessage = Callable[[str, str], None]

ACK_EVERY_S = 0.05


class Sender(Protocol):
    async def send(self, to: str, msg_id: str, body: str, on_reply: OnReply) -> None: ...
    async def close(self) -> None: ...


class Receiver(Protocol):
    async def close(self) -> None: ...


class ChatSender:
    """One of our WebSocket connections, resumed with a token, sending."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, OnReply] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str) -> ChatSender:
        ws = await connect(url, open_timeout=30, max_size=None, compression=None)
        await _resume(ws, token)
        return cls(ws)

    async def send(self, to: str, msg_id: str, body: str, on_reply: OnReply) -> None:
        request_id = next(self._ids)
        self._pending[request_id] = on_reply
        frame = {"op": "send", "id": request_id, "to": to, "body": body, "msg_id": msg_id}
        await self._ws.send(orjson.dumps(frame).decode())

    async def _read(self) -> None:
        async for frame in self._ws:
            reply = orjson.loads(frame)
            callback = self._pending.pop(reply.get("id"), None)
            if callback is not None:
                callback(None if reply.get("ok") else str(reply.get("error")))

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class ChatReceiver:
    """A resumed session that takes pushes and acks them every ACK_EVERY_S
    (cumulative), so inboxes stay small as a real client keeps them."""

    def __init__(self, ws: ClientConnection, on_message: OnMessage, *, ack: bool) -> None:
        self._ws = ws
        self._on_message = on_message
        self._last_seq: str | None = None
        self._acked: str | None = None
        self._tasks = [asyncio.create_task(self._read())]
        if ack:  # the failover check leaves inboxes full, to fetch them afterwards
            self._tasks.append(asyncio.create_task(self._ack()))

    @classmethod
    async def open(cls, url: str, token: str, on_message: OnMessage, *,
                   ack: bool = True) -> ChatReceiver:
        ws = await connect(url, open_timeout=30, max_size=None, compression=None)
        await _resume(ws, token)
        return cls(ws, on_message, ack=ack)

    async def _read(self) -> None:
        async for frame in self._ws:
            data = orjson.loads(frame)
            if data.get("event") == "message":
                message = data["message"]
                self._last_seq = message["seq"]
                self._on_message(message["msg_id"], message["body"])

    async def _ack(self) -> None:
        ids = itertools.count(1)
        while True:
            await asyncio.sleep(ACK_EVERY_S)
            if self._last_seq is not None and self._last_seq != self._acked:
                self._acked = self._last_seq
                frame = {"op": "ack", "id": f"a{next(ids)}", "seq": self._acked}
                await self._ws.send(orjson.dumps(frame).decode())

    async def close(self) -> None:
        await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _resume(ws: ClientConnection, token: str) -> None:
    await ws.send(orjson.dumps({"op": "resume", "id": 0, "token": token}).decode())
    reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
    if not reply.get("ok"):
        raise RuntimeError(f"resume failed: {reply}")


async def chat_request(ws: ClientConnection, op: str, **args: Any) -> dict[str, Any]:
    """One request on an otherwise idle connection (setup and verification)."""
    await ws.send(orjson.dumps({"op": op, "id": op, **args}).decode())
    while True:
        reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("id") == op:
            return reply
