"""A poll run at start, then every interval (or sooner when woken), until closed.

Both topologies (topology.py for one primary, cluster_topology.py for a
Redis Cluster) re-read what they watch this way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Poller:
    def __init__(self, poll: Callable[[], Awaitable[None]], *,
                 interval_s: float | Callable[[], float], name: str) -> None:
        """`interval_s` may be a function, asked before each wait (a topology
        without a primary polls sooner)."""
        self._poll = poll
        self._interval = interval_s if callable(interval_s) else (lambda: interval_s)
        self._name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """One poll now, then the loop in the background."""
        await self._poll()
        self._task = asyncio.create_task(self._run(), name=self._name)

    def wake(self) -> None:
        """Poll now instead of at the end of the interval."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # woken early, or the interval passed
                await asyncio.wait_for(self._wake.wait(), self._interval())
            self._wake.clear()
            await self._poll()
