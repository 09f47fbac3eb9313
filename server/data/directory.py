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

A crash between two steps leaves a marked account or a name without an
account. The next register of that name, a login, and `repair` (run when a
server starts and before the invariants check) complete what was pending,
so `python -m server.invariants` holds that every account is listed and the
reverse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis.commands.core import AsyncScript

from server import keys
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client

if TYPE_CHECKING:
    from server.data.commit import GroupCommitter

log = logging.getLogger(__name__)

#: Account hash field marking a listing still to be made.
PENDING = "dir"


class Directory:
    """The second steps of register and delete on a Cluster, and their repair."""

    def __init__(self, redis: Client, committer: GroupCommitter, *, directory: AsyncScript,
                 listed: AsyncScript) -> None:
        self._redis = redis
        self._committer = committer
        self._directory = directory
        self._listed = listed

    async def list_name(self, name: str, gen: str) -> None:
        """List `name` (created as generation `gen`), then clear its pending mark."""
        await self._committer.run(self._directory, [keys.USERS], ["add", name])
        await self._committer.run(self._listed, [keys.account(name)], [gen])

    async def unlist_name(self, name: str) -> None:
        """Unlist a deleted name, unless an account of that name exists again."""
        await self._committer.run(self._directory, [keys.USERS], ["remove", name])
        gen = await self._redis.hget(keys.account(name), "gen")
        if gen is not None:  # re-registered meanwhile: its listing must stay
            await self.list_name(name, str(gen))

    @unavailable_on_redis_error
    async def complete(self, name: str) -> None:
        """Finish a listing left pending by a crash (nothing when none is)."""
        pending, gen = await self._redis.hmget(
            keys.account(name), [PENDING, "gen"])
        if pending is not None and gen is not None:
            log.info("completing the pending directory listing of user=%s", name)
            await self.list_name(name, str(gen))

    @unavailable_on_redis_error
    async def repair(self) -> int:
        """Complete every step a crash left pending; how many names it fixed."""
        accounts: set[str] = set()
        fixed = 0
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
