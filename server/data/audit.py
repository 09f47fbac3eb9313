"""Read-only inspection of the chat's data, for `python -m server.invariants`.

A part of the store (`store.audit`), constructed with the Redis client
alone: these reads stay the only Redis access of the consistency checker.
Nothing here writes, and nothing on the request path calls it (a SCAN over
every key is for audits, not for serving).
"""

from __future__ import annotations

from server import keys
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client


class Audit:
    """Whole-keyspace and per-user reads that check invariants, never chat traffic."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis

    @unavailable_on_redis_error
    async def scan_keys(self, match: str) -> list[str]:
        return [key async for key in self._redis.scan_iter(match=match, count=1000)]

    @unavailable_on_redis_error
    async def listed_users(self) -> set[str]:
        return {name async for name, _ in self._redis.zscan_iter(keys.USERS)}

    @unavailable_on_redis_error
    async def ttls_ms(self, names: list[str]) -> dict[str, int]:
        """PTTL of each key: -1 has no expiry, -2 is gone."""
        pipe = self._redis.pipeline(transaction=False)
        for key in names:
            pipe.pttl(key)
        return dict(zip(names, await pipe.execute(), strict=True))

    @unavailable_on_redis_error
    async def token_expiries(self, name: str) -> dict[str, str]:
        """sha256(token) -> expiry ms (as stored) of a user's sessions."""
        tokens: dict[str, str] = await self._redis.hgetall(keys.tokens(name))  # type: ignore[assignment]
        return tokens

    @unavailable_on_redis_error
    async def inbox_counters(self, name: str) -> tuple[int, int, dict[str, int]] | None:
        """The account's inbox counters (messages, bytes, per sender); None: not counted yet."""
        fields: dict[str, str] = await self._redis.hgetall(keys.account(name))  # type: ignore[assignment]
        if keys.INBOX_COUNT not in fields or keys.INBOX_BYTES not in fields:
            return None
        start = len(keys.PENDING_FROM)
        per_sender = {field[start:]: int(value) for field, value in fields.items()
                      if field.startswith(keys.PENDING_FROM)}
        return int(fields[keys.INBOX_COUNT]), int(fields[keys.INBOX_BYTES]), per_sender

    @unavailable_on_redis_error
    async def inbox_ledger(self, name: str) -> list[str] | None:
        """The inbox ledger's lines; None when the counters were kept without one
        (no newest-seq field: written by a version before the ledger)."""
        if await self._redis.hget(keys.account(name), keys.INBOX_LAST) is None:
            return None
        lines: list[str] = await self._redis.lrange(keys.ledger(name), 0, -1)  # type: ignore[assignment]
        return lines

    @unavailable_on_redis_error
    async def dedupe_records_without_expiry(self, key: str) -> int:
        """Records in a dedupe hash that would never expire (neither key nor field TTL)."""
        if await self._redis.pttl(key) >= 0:
            return 0
        fields: list[str] = await self._redis.hkeys(key)  # type: ignore[assignment]
        never = 0
        for i in range(0, len(fields), 500):
            chunk = fields[i:i + 500]
            ttls = await self._redis.execute_command(
                "HPTTL", key, "FIELDS", len(chunk), *chunk)
            never += sum(1 for ttl in ttls if ttl == -1)
        return never
