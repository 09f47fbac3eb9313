"""Failed-login counters: the Redis side of login throttling (see ops._check_password).

Part of the store: `Store` inherits these. One counter per name+address (on
the user's slot) and one per address; only failures count, each in a fixed
window that starts at the first failure (scripts/login_failed.lua), so no
counter outlives its window and correct logins never lock out an address.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from server import keys
from server.redis_conn import unavailable_on_redis_error


class LoginFailures:
    """Read and count failed logins per name+address and per address."""

    redis: Redis
    _scripts: dict[str, AsyncScript]

    @unavailable_on_redis_error
    async def login_failures(self, name: str, address: str) -> int:
        value = await self.redis.get(keys.login_failures(name, address))
        return int(value or 0)

    @unavailable_on_redis_error
    async def record_login_failure(self, name: str, address: str, *, window_ms: int) -> int:
        count = await self._scripts["login_failed"](
            keys=[keys.login_failures(name, address)], args=[window_ms]
        )
        return int(count)

    @unavailable_on_redis_error
    async def login_failure_counts(self, name: str | None, address: str) -> tuple[int, int]:
        """Failed logins in the window: (for name+address, for the address alone).

        Only failures count, so correct logins in progress never lock out an
        address (many users behind one NAT); the hashing bound per address
        (server/hashing.py) keeps guesses in flight too few to outrun it.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.login_failures_from(address))
        if name is not None:
            pipe.get(keys.login_failures(name, address))
        counts = [int(n or 0) for n in await pipe.execute()]
        return (counts[1] if name is not None else 0), counts[0]

    @unavailable_on_redis_error
    async def count_login_failure(self, name: str | None, address: str, *, window_ms: int
                                  ) -> tuple[int, int]:
        """Count one failed login for name+address and for the address; the new counts."""
        script = self._scripts["login_failed"]
        pipe = self.redis.pipeline(transaction=False)
        counters = [keys.login_failures_from(address)]
        if name is not None:
            counters.append(keys.login_failures(name, address))
        for key in counters:
            await script(keys=[key], args=[window_ms], client=pipe)
        counts = [int(n) for n in await pipe.execute()]
        return (counts[1] if name is not None else 0), counts[0]
