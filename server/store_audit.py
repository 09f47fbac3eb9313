"""Read-only inspection of the chat's data, for `python -m server.invariants`.

Part of the store: `Store` inherits these reads, so they stay the only Redis
access of the consistency checker. Nothing here writes, and nothing on the
request path calls it (a SCAN over every key is for audits, not for serving).
"""

from __future__ import annotations

from redis.asyncio import Redis

from server import keys
from server.redis_conn import unavailable_on_redis_error


class AuditReads:
    """Whole-keyspace and per-user reads that check invariants, never chat traffic."""

    redis: Redis

    @unavailable_on_redis_error
    async def scan_keys(self, match: str) -> list[str]:
        return [key async for key in self.redis.scan_iter(match=match, count=1000)]

    @unavailable_on_redis_error
    async def listed_users(self) -> set[str]:
        return {name async for name, _ in self.redis.zscan_iter(keys.USERS)}

    @unavailable_on_redis_error
    async def ttls_ms(self, names: list[str]) -> dict[str, int]:
        """PTTL of each key: -1 has no expiry, -2 is gone."""
        pipe = self.redis.pipeline(transaction=False)
        for key in names:
            pipe.pttl(key)
        return dict(zip(names, await pipe.execute(), strict=True))

    @unavailable_on_redis_error
    async def token_expiries(self, name: str) -> dict[str, str]:
        """sha256(token) -> expiry ms (as stored) of a user's sessions."""
        tokens: dict[str, str] = await self.redis.hgetall(keys.tokens(name))  # type: ignore[assignment]
        return tokens

    @unavailable_on_redis_error
    async def dedupe_sizes(self, name: str) -> tuple[int, int]:
        """Entries in a user's seen hash and in its expiry index (always equal)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(keys.seen(name))
        pipe.zcard(keys.seen_expiry(name))
        seen, index = await pipe.execute()
        return int(seen), int(index)
