"""What issue 17's exhaustion tests share: hostile peers, timing and memory probes.

The tests run real server processes, with raw sockets where a library
would be too polite; distinct loopback addresses (127.0.0.2, 127.0.0.3,
...) play distinct clients; `PeakRss` samples a server's memory while a
test attacks it. Timing bounds are the issue's; under a shared machine's
load the tests print what they measured when they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from websockets.asyncio.client import connect

from tests.procs import ServerProc
from tests.rawws import rss_kib
from tests.wsclient import Peer

T = TypeVar("T")

MIB = 1024
#: Production argon2 parameters (server/settings.py defaults), where the
#: cost of hashing is what the test is about.
REAL_ARGON2 = {"CHAT_ARGON2_TIME_COST": "3", "CHAT_ARGON2_MEMORY_KIB": "65536",
               "CHAT_ARGON2_PARALLELISM": "4"}
CONTROL_BODY = "\x01" * 4096  # 24,576 bytes once escaped in JSON
NO_RATE = ("--requests-per-second", "100000", "--request-burst", "100000")


async def peer_from(server: ServerProc, source: str) -> Peer:
    """A library-free protocol peer connecting from loopback address `source`."""
    ws = await connect(server.url, open_timeout=10, max_size=None, local_addr=(source, 0))
    return Peer(ws)


async def timed(action: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await action()
    return result, time.perf_counter() - started


async def fill_inbox(server: ServerProc, to: str, count: int, body: str) -> None:
    filler = await Peer.connect(server.url)
    await filler.register_login(f"filler-{uuid.uuid4().hex[:8]}")
    for start in range(0, count, 100):
        batch = range(start, min(count, start + 100))
        for i in batch:
            await filler.send_raw(json.dumps({"op": "send", "id": i, "to": to, "body": body,
                                              "msg_id": uuid.uuid4().hex}))
        for _ in batch:
            assert (await filler.recv())["ok"] is True
    await filler.close()


class PeakRss:
    """Samples a server's RSS in the background; the most it grew above the start."""

    def __init__(self, server: ServerProc) -> None:
        self.server = server
        self.base = rss_kib(server)
        self.peak = self.base
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib(self.server))
            await asyncio.sleep(0.02)

    async def growth_kib(self) -> int:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.peak - self.base



async def login_from(server: ServerProc, source: str, name: str) -> dict[str, object]:
    """Log `name` in from loopback address `source` on a connection of its own."""
    peer = await peer_from(server, source)
    try:
        return await peer.ok("login", username=name, password="correct horse")
    finally:
        await peer.close()
