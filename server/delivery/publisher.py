"""Batched PUBLISH of new-message notifications.

A send is answered as soon as its write is durable; the notification that
makes other instances push it goes out here, many per round trip, in the
order the sends were confirmed. A lost notification is not a lost message:
the inbox is the truth and the delivery sweep pushes what pub/sub dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.storage.failures import raise_if_cancelled
from server.store import Store
from server.wire import errors

log = logging.getLogger(__name__)

MAX_BATCH = 512


class Publisher:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[str, bytes]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="publisher")

    def post(self, name: str, payload: bytes) -> None:
        """Queue a notification on `name`'s channel; never blocks the caller."""
        self._pending.append((name, payload))
        self._wakeup.set()

    async def close(self) -> None:
        """Flush what is queued (best effort), then stop; idempotent."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        with contextlib.suppress(errors.Unavailable):
            while self._pending:
                await self._flush()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                try:
                    await self._flush()
                except errors.Unavailable as exc:
                    log.warning("publish failed (the sweep will push): %s", exc.detail)
                except Exception:
                    # A dead publisher means no live pushes at all until a
                    # restart (the sweep alone would deliver): log and go on.
                    log.exception("publish failed unexpectedly (the sweep will push)")
                raise_if_cancelled()  # a cancel redis-py's wait_for swallowed

    async def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        await self._store.publish_many(batch)
