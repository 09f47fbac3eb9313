"""Where a send's dedupe record goes, chosen once from what Redis can do.

A part of the store (`store.dedupe`), constructed with the Redis client, the
window and, if known, the layout. A record lives for
the dedupe window, in one of three layouts that send.lua writes:

- `hsetex` (Valkey >= 9, Redis >= 8): one hash per recipient, each field
  written with its own expiry by HSETEX: one command per record, gone one
  window after the send (plus the server's active-expiry lag).
- `hpexpire` (Redis 7.4): the same hash, HSET + HPEXPIRE per record.
- `generations` (Redis 7.0-7.2, no field expiry): one hash per recipient
  and window-long generation (ts // window), the whole key expiring at the
  end of the next generation (PEXPIRE on every write, to the same end); a
  lookup reads this generation and the one before. A record lives one to
  two windows.

The layout is detected when the store first talks to Redis (COMMAND INFO)
and kept; every node of a set runs the same version. Records of the
pre-window layout (`seen` hash + `seen-exp` index, no expiry) are given an
expiry of one window at start and read during that window, so retries in
flight across the upgrade are still recognised (docs/operations.md).
"""

from __future__ import annotations

import logging
import time

from server import keys
from server.storage.capabilities import supported_layout
from server.storage.redis_conn import Client, unavailable_on_redis_error

log = logging.getLogger(__name__)


#: Keys per PEXPIRE pipeline while expiring legacy records.
LEGACY_BATCH = 500


class Dedupe:
    """The dedupe layout of one Store, and the keys and expiry a send uses."""

    def __init__(self, redis: Client, *, window_ms: int, layout: str | None = None) -> None:
        """`layout` (one of storage.capabilities.LAYOUTS) skips asking Redis for it."""
        self._redis = redis
        self.window_ms = window_ms
        self._layout = layout
        #: Until when (ms) send.lua also looks in the legacy `seen` hashes.
        self.legacy_until_ms = 0

    @property
    def layout(self) -> str | None:
        """The layout in use, or None before Redis was first asked."""
        return self._layout

    @unavailable_on_redis_error
    async def detect_layout(self) -> str:
        """Ask Redis which layout it supports (once); the answer is kept."""
        if self._layout is None:
            self._layout = await supported_layout(self._redis)
            log.info("dedupe records: layout %s, window %d s", self._layout,
                     self.window_ms // 1000)
        return self._layout

    async def for_send(self, name: str, now_ms: int) -> tuple[list[str], list[str | int]]:
        """send.lua's dedupe KEYS (1 or 3) and settings (layout, expiry, legacy flag) for `name`."""
        layout = self._layout or await self.detect_layout()
        return dedupe_call(name, now_ms, layout=layout, window_ms=self.window_ms,
                           legacy=now_ms < self.legacy_until_ms)

    def keys_to_delete(self, name: str, now_ms: int) -> list[str]:
        """Every dedupe key a lookup for `name` could read (delete_account.lua KEYS 3-7)."""
        generation = now_ms // self.window_ms
        return [keys.dedupe(name), keys.dedupe_generation(name, generation),
                keys.dedupe_generation(name, generation - 1), keys.seen(name),
                keys.seen_expiry(name)]

    @unavailable_on_redis_error
    async def expire_legacy(self, *, now_ms: int | None = None) -> int:
        """Give legacy dedupe keys without expiry one window to live; how many were found.

        While any are found, sends read them for one window, so a retry of a
        message stored before the upgrade is still recognised.
        """
        start = now_ms if now_ms is not None else int(time.time() * 1000)
        # Read legacy records while the scan runs: it may find some late.
        self.legacy_until_ms = max(self.legacy_until_ms, start + self.window_ms)
        found = 0
        pipe = self._redis.pipeline(transaction=False)
        async for key in self._redis.scan_iter(match=keys.LEGACY_DEDUPE_MATCH, count=1000):
            owner = keys.owner_of(key)
            if owner is None or owner[1] not in ("seen", "seen-exp"):
                continue
            pipe.pexpire(key, self.window_ms, nx=True)
            found += 1
            if len(pipe) >= LEGACY_BATCH:
                await pipe.execute()
        if len(pipe):
            await pipe.execute()
        self.legacy_until_ms = start + self.window_ms if found else 0
        if found:
            log.info("found %d legacy dedupe keys: read until they expire in %d s",
                     found, self.window_ms // 1000)
        return found


def dedupe_call(name: str, now_ms: int, *, layout: str, window_ms: int, legacy: bool
                ) -> tuple[list[str], list[str | int]]:
    """send.lua's dedupe KEYS (1 or 3) and settings (layout, expiry, legacy flag).

    The record's hash alone when nothing else is looked in (field expiry, no
    legacy records: the common case, 3 KEYS per send); else also the hash
    looked in (the previous generation) and the legacy hash.
    """
    flag = "1" if legacy else "0"
    if layout == "generations":
        generation = now_ms // window_ms
        current = keys.dedupe_generation(name, generation)
        previous = keys.dedupe_generation(name, generation - 1)
        # Relative to the send's own clock: the hash lives to the end of the next generation.
        expire_in = (generation + 2) * window_ms - now_ms
        return [current, previous, keys.seen(name)], [layout, expire_in, flag]
    record = keys.dedupe(name)
    if legacy:
        return [record, record, keys.seen(name)], [layout, window_ms, flag]
    return [record], [layout, window_ms, flag]

