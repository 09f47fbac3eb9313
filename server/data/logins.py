"""Failed-login counters: the Redis side of login throttling (see conn.ops._check_password).

A part of the store (`store.logins`), constructed with the Redis client and
scripts/login_failed.lua. Three counters, each in a fixed window that starts at its
first failure (scripts/login_failed.lua), so none outlives its window: per
name+address (on the user's slot), per address over all names (password
spraying) and per name over all addresses (guessing one account from many
places). Only failures count, so correct logins in progress never lock out
an address (many users behind one NAT).
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from redis.commands.core import AsyncScript

from server import keys
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client


class FailureCounts(NamedTuple):
    """Failed logins in the current windows."""

    by_name: int  # this name from this address
    by_address: int  # this address, every name
    by_user: int  # this name, every address


class Logins:
    """Read and count failed logins."""

    def __init__(self, redis: Client, login_failed: AsyncScript) -> None:
        self._redis = redis
        self._login_failed = login_failed

    @staticmethod
    def _counters(name: str | None, address: str) -> list[str]:
        if name is None:  # not a valid name: only the address is counted
            return [keys.login_failures_from(address)]
        return [keys.login_failures_from(address), keys.login_failures(name, address),
                keys.login_failures_of(name)]

    @unavailable_on_redis_error
    async def counts(self, name: str | None, address: str) -> FailureCounts:
        """The failures counted so far (one round trip; GETs, not MGET: the
        counters live in different slots)."""
        pipe = self._redis.pipeline(transaction=False)
        for key in self._counters(name, address):
            pipe.get(key)
        counts = [int(n or 0) for n in await pipe.execute()]
        if name is None:
            return FailureCounts(0, counts[0], 0)
        return FailureCounts(counts[1], counts[0], counts[2])

    @unavailable_on_redis_error
    async def count_failure(self, name: str | None, address: str, *, window_ms: int
                            ) -> FailureCounts:
        """Count one failed login on every counter it belongs to; the new counts."""
        # Each counter its own call, at once: they live in different slots,
        # and a Cluster's pipeline refuses scripts (redis-py).
        counts = [int(n) for n in await asyncio.gather(
            *(self._login_failed(keys=[key], args=[window_ms])
              for key in self._counters(name, address)))]
        if name is None:
            return FailureCounts(0, counts[0], 0)
        return FailureCounts(counts[1], counts[0], counts[2])
