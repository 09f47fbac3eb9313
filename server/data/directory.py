"""The name directory on a Redis Cluster: listed in a step of its own, repaired after a crash.

A part of the store (`store.directory`). With one primary, register.lua and
delete_account.lua list and unlist the name in the same script as the
account. On a Cluster the directory (keys.USERS) is in a slot of its own,
so each is two durable steps:

- register: the account is created marked `dir` (listing pending) in its
  slot; then the name is listed (directory.lua); then the mark is cleared
  (listed.lua, only for the same generation);
- delete: the account goes; then the name is unlisted, and listed again if
  an account of that name exists by then (a register on another instance
  may have run between the two steps).

The first step of each also adds the name to the pending set of the
account's slot (keys.directory_pending_in), in the same script; listed.lua
drops it once nothing is pending. So a crash between two steps leaves the
name in a pending set, findable without scanning every account: a sweep
(every --sweep-interval-ms, from a server's start) reads the pending sets
of SLOTS_PER_ROUND slots per round (a pass over all slots: 16 rounds, 80 s
at the default 5 s) and completes at most NAMES_PER_ROUND names it finds. The
next register of that name and a login complete a listing too, and
`repair` (before the invariants check) also scans every account, for marks
written before the pending sets existed. So `python -m server.invariants`
holds that every account is listed and the reverse.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.commands.core import AsyncScript
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from server import keys
from server.storage.cluster_view import all_slot_tags, learn_slot_tags, tag_for_slot
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client
from server.wire import errors

if TYPE_CHECKING:
    from server.data.commit import GroupCommitter

log = logging.getLogger(__name__)

#: Account hash field marking a listing still to be made.
PENDING = "dir"
#: A sweep round reads the pending sets of this many slots (one pipeline) ...
SLOTS_PER_ROUND = 1024
#: ... and completes at most this many names; the rest wait for the next round.
NAMES_PER_ROUND = 100


def pending_key(name: str) -> str:
    """The pending set of the slot `name`'s account is in."""
    return keys.directory_pending_in(tag_for_slot(key_slot(keys.account(name).encode())))


class Directory:
    """The second steps of register and delete on a Cluster, and their repair."""

    def __init__(self, redis: Client, committer: GroupCommitter, *, directory: AsyncScript,
                 listed: AsyncScript) -> None:
        self._redis = redis
        self._committer = committer
        self._directory = directory
        self._listed = listed
        #: The first slot the next sweep round reads.
        self._cursor = 0

    pending_key = staticmethod(pending_key)

    async def list_name(self, name: str, gen: str) -> None:
        """List `name` (created as generation `gen`), then clear its pending mark."""
        await self._committer.run(self._directory, [keys.USERS], ["add", name])
        await self._settled(name, gen)

    async def unlist_name(self, name: str) -> None:
        """Unlist a deleted name, unless an account of that name exists again."""
        await self._committer.run(self._directory, [keys.USERS], ["remove", name])
        gen = await self._redis.hget(keys.account(name), "gen")
        if gen is not None:  # re-registered meanwhile: its listing must stay
            await self.list_name(name, str(gen))
        else:
            await self._settled(name, "")

    async def _settled(self, name: str, gen: str) -> None:
        await self._committer.run(self._listed, [keys.account(name), pending_key(name)],
                                  [gen, name])

    async def settle(self, name: str) -> None:
        """Complete whatever step of `name` its slot's pending set records."""
        pending, gen = await self._redis.hmget(keys.account(name), [PENDING, "gen"])
        if gen is None:
            log.info("unlisting user=%s: its account was deleted before a crash", name)
            await self.unlist_name(name)
        elif pending is not None:
            log.info("completing the pending directory listing of user=%s", name)
            await self.list_name(name, str(gen))
        else:  # completed by its own steps since the pending set was read
            await self._settled(name, str(gen))

    @unavailable_on_redis_error
    async def sweep_round(self) -> int:
        """Settle the names pending in the next SLOTS_PER_ROUND slots (at most
        NAMES_PER_ROUND of them); how many it settled."""
        first = self._cursor
        slots = range(first, min(first + SLOTS_PER_ROUND, REDIS_CLUSTER_HASH_SLOTS))
        pipe = self._redis.pipeline(transaction=False)
        for slot in slots:
            pipe.srandmember(keys.directory_pending_in(tag_for_slot(slot)), NAMES_PER_ROUND)
        settled = 0
        for slot, names in zip(slots, await pipe.execute(), strict=True):
            for name in names:
                if settled == NAMES_PER_ROUND:
                    self._cursor = slot  # this slot again, next round
                    return settled
                await self.settle(str(name))
                settled += 1
        self._cursor = slots.stop % REDIS_CLUSTER_HASH_SLOTS
        return settled

    async def sweep_forever(self, interval_s: float) -> None:
        """A sweep round every `interval_s` (a pass over every slot takes
        16384 / SLOTS_PER_ROUND rounds), from now until cancelled."""
        # Not at once: a start has more urgent work (clients reconnecting).
        await asyncio.sleep(interval_s)
        # The slots' tags are one CPU-bound pass: off the event loop.
        learn_slot_tags(await asyncio.to_thread(all_slot_tags))
        while True:
            try:
                await self.sweep_round()
            except errors.Unavailable as exc:
                log.warning("directory sweep failed (%s); retrying", exc.detail)
            await asyncio.sleep(interval_s)

    @unavailable_on_redis_error
    async def complete(self, name: str) -> None:
        """Finish a listing left pending by a crash (nothing when none is)."""
        pending, gen = await self._redis.hmget(
            keys.account(name), [PENDING, "gen"])
        if pending is not None and gen is not None:
            log.info("completing the pending directory listing of user=%s", name)
            await self.list_name(name, str(gen))

    @unavailable_on_redis_error
    async def pending(self) -> list[str]:
        """Every name some slot's pending set holds (reads all 16384 slots)."""
        names: list[str] = []
        for first in range(0, REDIS_CLUSTER_HASH_SLOTS, SLOTS_PER_ROUND):
            pipe = self._redis.pipeline(transaction=False)
            for slot in range(first, first + SLOTS_PER_ROUND):
                pipe.smembers(keys.directory_pending_in(tag_for_slot(slot)))
            names += [str(name) for members in await pipe.execute() for name in members]
        return names

    @unavailable_on_redis_error
    async def repair(self) -> int:
        """Complete every step a crash left pending, scanning every account;
        how many names it fixed."""
        fixed = 0
        for name in await self.pending():
            await self.settle(name)
            fixed += 1
        accounts: set[str] = set()
        async for key in self._redis.scan_iter(match=keys.account("*"), count=1000):
            owner = keys.owner_of(str(key))
            if owner is None:
                continue
            accounts.add(owner[0])
            if await self._redis.hget(str(key), PENDING) is not None:
                await self.complete(owner[0])
                fixed += 1
        async for name, _ in self._redis.zscan_iter(keys.USERS, count=1000):
            if name not in accounts and not await self._redis.exists(keys.account(name)):
                log.info("unlisting user=%s: its account was deleted before a crash", name)
                await self.unlist_name(str(name))
                fixed += 1
        return fixed
