"""How long a fault stops sends: a raw protocol peer that sends all the time.

`Probe` sends itself a small message every `interval` with a raw protocol
peer, so no client-side retry hides a failed send, and records every
attempt; `outage_since(fault)` turns them into an `Outage`.
`longest_ack_gap` adds the chaos load's own acks (tests/chaosload.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.chaosload import PASSWORD, Load


@dataclass(frozen=True)
class Attempt:
    started: float  # time.monotonic()
    ended: float
    ok: bool
    error: str


@dataclass(frozen=True)
class Outage:
    """Sends that failed after a fault, as seen by one probe."""

    failed: int
    #: First failed send started -> first ok send after the last failure answered.
    window_s: float
    #: The fault -> first ok send after the last failure answered.
    fault_to_ok_s: float

    def __str__(self) -> str:
        return (f"{self.failed} failed sends; unavailable for {self.window_s:.2f}s "
                f"(first failed send -> first ok send), fault -> first ok send "
                f"{self.fault_to_ok_s:.2f}s")


class Probe:
    """A raw peer that sends itself a small message every `interval` and times replies."""

    def __init__(self, url: str, name: str, *, interval: float = 0.05) -> None:
        self.url = url
        self.name = name
        self.interval = interval
        self.attempts: list[Attempt] = []
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ws = await connect(self.url, open_timeout=10)
        for op in ("register", "login"):
            reply = await self._request({"op": op, "username": self.name, "password": PASSWORD})
            assert reply.get("ok"), reply
        self._task = asyncio.create_task(self._run(), name=f"probe-{self.name}")

    async def _request(self, frame: dict[str, object], timeout: float = 15.0) -> dict[str, object]:
        assert self._ws is not None
        request_id = next(self._ids)
        await self._ws.send(json.dumps({**frame, "id": request_id}))
        async with asyncio.timeout(timeout):
            while True:
                reply = json.loads(await self._ws.recv())
                if reply.get("id") == request_id:
                    return dict(reply)  # events and late replies are skipped

    async def _run(self) -> None:
        for n in itertools.count():
            started = time.monotonic()
            try:
                reply = await self._request({"op": "send", "to": self.name, "body": "probe",
                                             "msg_id": f"probe-{n}"})
                ok, error = bool(reply.get("ok")), str(reply.get("error", ""))
            except (TimeoutError, ConnectionClosed) as exc:
                ok, error = False, type(exc).__name__
                if isinstance(exc, ConnectionClosed):
                    self.attempts.append(Attempt(started, time.monotonic(), ok, error))
                    return
            self.attempts.append(Attempt(started, time.monotonic(), ok, error))
            await asyncio.sleep(self.interval)

    def outage_since(self, fault: float) -> Outage | None:
        """The outage after `fault` (a time.monotonic()); None if no ok send followed yet."""
        after = [a for a in self.attempts if a.ended >= fault]
        failures = [i for i, a in enumerate(after) if not a.ok]
        if not failures:
            first_ok = next((a for a in after if a.ok), None)
            if first_ok is None:
                return None
            return Outage(0, 0.0, first_ok.ended - fault)
        recovered = next((a for a in after[failures[-1]:] if a.ok), None)
        if recovered is None:
            return None
        return Outage(len(failures), recovered.ended - after[failures[0]].started,
                      recovered.ended - fault)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()



def longest_ack_gap(load: Load, probe: Probe, start: float, end: float) -> float:
    """Longest span within [start, end] with no send acked by any sender or the
    probe (the last ack before `start` opens the first span)."""
    stamps = sorted(
        [t for sender in load.senders for t in sender.acked_at]
        + [a.ended for a in probe.attempts if a.ok]
    )
    before = [t for t in stamps if t < start]
    inside = [t for t in stamps if start <= t <= end]
    points = [before[-1] if before else start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))
