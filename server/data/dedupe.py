"""Where a send's dedupe record goes, chosen from what every node of the set can do.

A part of the store (`store.dedupe`), constructed with the Redis client, the
window and, if known, the layout. A record lives for
the dedupe window, in one of three layouts that send.lua writes:

- `hsetex` (Valkey >= 9, Redis >= 8): one hash per recipient, each field
  written with its own expiry by HSETEX: one command per record, gone one
  window after the send (plus the server's active-expiry lag).
- `hpexpire` (Redis 7.4): the same hash, HSET + HPEXPIRE per record.
- `generations` (Redis 7.0-7.2, no field expiry): one hash per recipient
  and window-long generation (ts // window), the whole key expiring at the
  end of the next generation (PEXPIRE on every write, to the same end, plus
  MAX_CLOCK_SKEW_MS). A send's ts comes from its instance's clock, and
  instances' clocks differ: a lookup reads every generation from ts -
  window - skew to ts + skew (2 or 3 hashes). A record lives one to two
  windows.

The layout is the best one every node of the set supports (the primary and
each replica the topology knows): a replica that cannot apply the
primary's HSETEX drops the whole script's effects, its XADD included, yet
acknowledges the offset to WAIT. It is asked again when the set's members
change (a failover, a replica added) and when send.lua refuses a layout
the node lacks (it does so before its first write); a member that does not
answer is asked again a second later, the layout kept meanwhile. After a change, the
hashes of the layout before are still read for as long as its records live
(OLDER_LAYOUT_MS), so a resend within the window is recognised across it;
a fresh instance finds generation hashes at start (`adopt_older_records`).
Records of the pre-window layout (`seen` hash + `seen-exp` index, no
expiry) are given an expiry of one window at start and read during that
window, so retries in flight across the upgrade are still recognised
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server import keys
from server.storage.capabilities import LAYOUTS, supported_layout
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client

log = logging.getLogger(__name__)


#: Keys per PEXPIRE pipeline while expiring legacy records.
LEGACY_BATCH = 500
#: How far apart the instances' clocks may be (NTP keeps them within ms).
MAX_CLOCK_SKEW_MS = 5_000
#: How soon the set is asked again when a member did not answer (s).
ASK_AGAIN_S = 1.0
#: The set's members ("ip:port", the primary first) and a client of one.
Members = Callable[[], tuple[str, ...]]
NodeClient = Callable[[str], Redis]


def _records(layout: str) -> str:
    """Which hashes a layout's records live in: hsetex and hpexpire share one."""
    return "generations" if layout == "generations" else "field"


class Dedupe:
    """The dedupe layout of one Store, and the keys and expiry a send uses."""

    def __init__(self, redis: Client, *, window_ms: int, layout: str | None = None,
                 members: Members | None = None, node: NodeClient | None = None) -> None:
        """`layout` (one of storage.capabilities.LAYOUTS) skips asking Redis for it
        until a node refuses it. `members` and `node` (both or neither) name the
        set's nodes, whose weakest decides the layout; without them only the
        primary is asked."""
        self._redis = redis
        self.window_ms = window_ms
        self._layout = layout
        self._members = members
        self._node = node
        #: The members the layout was chosen for; None: ask again.
        self._asked: tuple[str, ...] | None = None if layout is None else self._now_members()
        #: While a member could not be asked, not before this (monotonic s).
        self._ask_again_at = 0.0
        self._asking = asyncio.Lock()
        #: Records of another layout still read ("field" | "generations" -> until, ms).
        self.older_until_ms: dict[str, int] = {}
        #: Until when (ms) send.lua also looks in the legacy `seen` hashes.
        self.legacy_until_ms = 0

    @property
    def layout(self) -> str | None:
        """The layout in use, or None before Redis was first asked."""
        return self._layout

    def _now_members(self) -> tuple[str, ...]:
        return self._members() if self._members is not None else ()

    def refused(self, command: str) -> None:
        """send.lua found `command` missing on the node (nothing written): ask again."""
        log.warning("dedupe layout %s refused by the primary (no %s): asking the set again",
                    self._layout, command)
        self._asked, self._ask_again_at = None, 0.0

    def _still_good(self) -> str | None:
        """The layout, unless the members changed since it was chosen (or a
        member did not answer then, a second ago or more)."""
        if self._layout is not None and (self._asked == self._now_members()
                                         or time.monotonic() < self._ask_again_at):
            return self._layout
        return None

    @unavailable_on_redis_error
    async def detect_layout(self) -> str:
        """The layout every member supports, asked again when the members changed."""
        if (layout := self._still_good()) is not None:
            return layout
        async with self._asking:
            if (layout := self._still_good()) is not None:
                return layout  # another send asked meanwhile
            members = self._now_members()
            found, complete = await self._weakest(members)
            return self._switch(found, members if complete else None)

    async def _weakest(self, members: tuple[str, ...]) -> tuple[str, bool]:
        """The weakest layout of the members that answer, and whether all did.

        A member that does not answer (the primary that just died, still
        listed until the Sentinels agree) is asked again a second later; the
        layout is kept meanwhile, so a failover does not flip it.
        """
        nodes = [self._node(m) for m in members] if self._node is not None and members \
            else [self._redis]
        answers = await asyncio.gather(*(supported_layout(client) for client in nodes),
                                       return_exceptions=True)
        found = [a for a in answers if isinstance(a, str)]
        missing = [a for a in answers if not isinstance(a, str)]
        for error in missing:
            if not isinstance(error, (RedisError, OSError)):
                raise error
        if missing:
            self._ask_again_at = time.monotonic() + ASK_AGAIN_S
            if not found and self._layout is None:
                raise missing[0]
            log.info("dedupe layout: %d of %d nodes did not answer (%s); asking again in %g s",
                     len(missing), len(nodes), missing[0], ASK_AGAIN_S)
        if self._layout is not None and missing:
            found.append(self._layout)  # what the silent ones were asked before
        return max(found, key=LAYOUTS.index), not missing

    def _switch(self, layout: str, members: tuple[str, ...] | None) -> str:
        old, self._layout, self._asked = self._layout, layout, members
        if old == layout:
            return layout
        if old is not None and _records(old) != _records(layout):
            # Its records live at most two windows plus the skew.
            until = int(time.time() * 1000) + 2 * self.window_ms + MAX_CLOCK_SKEW_MS
            self.older_until_ms[_records(old)] = until
        log.info("dedupe records: layout %s (was %s), window %d s, nodes %s", layout, old,
                 self.window_ms // 1000, ", ".join(members or ()) or "the primary")
        return layout

    async def for_send(self, name: str, now_ms: int) -> tuple[list[str], list[str | int]]:
        """send.lua's dedupe KEYS (the record's hash, then those looked in) and
        settings (layout, expiry, look flag) for `name`."""
        layout = await self.detect_layout()
        also = {kind for kind, until in self.older_until_ms.items() if now_ms < until}
        return dedupe_call(name, now_ms, layout=layout, window_ms=self.window_ms,
                           legacy=now_ms < self.legacy_until_ms, also=also)

    def keys_to_delete(self, name: str, now_ms: int) -> list[str]:
        """Every dedupe key a lookup for `name` could read (delete_account.lua KEYS 3-7, 11-)."""
        generation = now_ms // self.window_ms
        around = [keys.dedupe_generation(name, g) for g in generations(now_ms, self.window_ms)
                  if g not in (generation, generation - 1)]
        return [keys.dedupe(name), keys.dedupe_generation(name, generation),
                keys.dedupe_generation(name, generation - 1), keys.seen(name),
                keys.seen_expiry(name), *around]

    @unavailable_on_redis_error
    async def adopt_older_records(self, *, now_ms: int | None = None) -> int:
        """Records of older layouts, found once at start; how many keys were found.

        Legacy dedupe keys without expiry get one window to live and are read
        for that window; generation hashes found under a field layout (the
        set upgraded from Redis 7.2) are read until they expire. So a retry of
        a message stored before the upgrade is still recognised.
        """
        start = now_ms if now_ms is not None else int(time.time() * 1000)
        # Read older records while the scan runs: it may find some late.
        self.legacy_until_ms = max(self.legacy_until_ms, start + self.window_ms)
        generations_until = start + 2 * self.window_ms + MAX_CLOCK_SKEW_MS
        before = self.older_until_ms.get("generations")
        reading = self.older_until_ms["generations"] = max(before or 0, generations_until)
        legacy = found_generations = 0
        pipe = self._redis.pipeline(transaction=False)
        async for key in self._redis.scan_iter(match=keys.OLDER_DEDUPE_MATCH, count=1000):
            owner = keys.owner_of(key)
            if owner is None:
                continue
            if owner[1] == "dedupe" and key != keys.dedupe(owner[0]):
                found_generations += 1
            elif owner[1] in ("seen", "seen-exp"):
                pipe.pexpire(key, self.window_ms, nx=True)
                legacy += 1
                if len(pipe) >= LEGACY_BATCH:
                    await pipe.execute()
        if len(pipe):
            await pipe.execute()
        self.legacy_until_ms = start + self.window_ms if legacy else 0
        if not found_generations and self.older_until_ms.get("generations") == reading:
            # None found: back to what it was (a layout change meanwhile set its own).
            if before is None:
                del self.older_until_ms["generations"]
            else:
                self.older_until_ms["generations"] = before
        if legacy:
            log.info("found %d legacy dedupe keys: read until they expire in %d s",
                     legacy, self.window_ms // 1000)
        if found_generations and self._layout != "generations":
            log.info("found %d dedupe generation keys of Redis 7.0-7.2: read for %d s",
                     found_generations, (generations_until - start) // 1000)
        return legacy + found_generations


def generations(now_ms: int, window_ms: int) -> range:
    """The generations a record of a send at `now_ms` may be in, whichever
    instance's clock (within MAX_CLOCK_SKEW_MS) stamped it within the window."""
    return range((now_ms - window_ms - MAX_CLOCK_SKEW_MS) // window_ms,
                 (now_ms + MAX_CLOCK_SKEW_MS) // window_ms + 1)


def dedupe_call(name: str, now_ms: int, *, layout: str, window_ms: int, legacy: bool,
                also: Collection[str] = ()) -> tuple[list[str], list[str | int]]:
    """send.lua's dedupe KEYS (the record's hash, then the hashes looked in
    first) and settings (layout, expiry, look flag).

    The record's hash alone when nothing else is looked in (field expiry, no
    older records: the common case, 4 KEYS per send); with generations the
    other generations a record may be in; `also` ("field", "generations")
    the hashes of a layout used before, while its records live; `legacy` the
    pre-window hash.
    """
    looked: list[str] = []
    if layout == "generations":
        generation = now_ms // window_ms
        record = keys.dedupe_generation(name, generation)
        # Relative to the send's own clock: the hash lives to the end of the
        # next generation, and a reader whose clock is behind still finds it.
        expire: int = (generation + 2) * window_ms - now_ms + MAX_CLOCK_SKEW_MS
        if "field" in also:
            looked.append(keys.dedupe(name))
    else:
        record, expire = keys.dedupe(name), window_ms
    if layout == "generations" or "generations" in also:
        looked += [keys.dedupe_generation(name, g) for g in generations(now_ms, window_ms)]
    if legacy:
        looked.append(keys.seen(name))
    looked = [key for key in looked if key != record]
    return [record, *looked], [layout, expire, "1" if looked else "0"]
