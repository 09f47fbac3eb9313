"""Session tokens in Redis: issue, check, revoke (with the reason kept), change password.

A part of the store (`store.sessions`), constructed with the Redis client,
the committer and scripts/sessions.lua. Every write goes through
scripts/sessions.lua, one script on the user's slot, so a token is never
revoked without its reason being recorded, and a password never changes
without the other sessions ending. The reason stays in Redis for the
token's remaining life: pub/sub may drop the note that tells instances,
and the periodic sweep reads the reason here to end the session right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.commands.core import AsyncScript

from server import keys
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client

if TYPE_CHECKING:
    from server.data.commit import GroupCommitter

#: Revocation records kept per allowed live session (--max-sessions-per-user):
#: bounds the record hash when one account logs in over and over.
RECORDS_PER_SESSION = 10

#: What a session ended by, as the session_ended event names it.
EXPIRED = "expired"


@dataclass(frozen=True)
class Revoked:
    """A token a session write revoked."""

    token_hash: str
    reason: str


class Sessions:
    """Token records of a user: `tokens` (live) and `revoked` (why each one ended)."""

    def __init__(self, redis: Client, committer: GroupCommitter, script: AsyncScript) -> None:
        self._redis = redis
        self._committer = committer
        self._script = script

    async def _sessions(
        self, name: str, *, gen: str, now_ms: int, new_token: str = "", expires_ms: int = 0,
        max_sessions: int, revoke: str = "", reason: str = "", token: str = "",
        password_hash: str = "",
    ) -> list[Revoked] | None:
        reply = await self._committer.run(
            self._script,
            [keys.account(name), keys.tokens(name), keys.revoked(name)],
            [gen, now_ms, new_token, expires_ms, max_sessions, revoke, reason, token,
             password_hash, RECORDS_PER_SESSION * max_sessions],
        )
        if not reply or int(reply[0]) != 1:
            return None
        pairs = reply[1:]
        return [Revoked(token_hash=pairs[i + 1], reason=pairs[i])
                for i in range(0, len(pairs), 2)]

    @unavailable_on_redis_error
    async def issue_token(
        self, name: str, token_hash: str, *, gen: str, expires_ms: int, now_ms: int,
        max_sessions: int = 1_000_000,
    ) -> list[Revoked] | None:
        """Record a token; the tokens it replaced (beyond max_sessions). None: no account."""
        return await self._sessions(name, gen=gen, now_ms=now_ms, new_token=token_hash,
                                    expires_ms=expires_ms, max_sessions=max_sessions)

    @unavailable_on_redis_error
    async def revoke_tokens(
        self, name: str, *, gen: str, now_ms: int, reason: str, token_hash: str | None = None,
        max_sessions: int = 1_000_000,
    ) -> list[Revoked]:
        """Revoke one token (or, token_hash None, every token) of the account."""
        revoked = await self._sessions(
            name, gen=gen, now_ms=now_ms, max_sessions=max_sessions,
            revoke="all" if token_hash is None else "one", reason=reason, token=token_hash or "")
        return revoked or []

    @unavailable_on_redis_error
    async def change_password(
        self, name: str, *, gen: str, password_hash: str, token_hash: str, expires_ms: int,
        now_ms: int, max_sessions: int = 1_000_000,
    ) -> list[Revoked] | None:
        """New password and token; every other token revoked ('password_changed')."""
        return await self._sessions(
            name, gen=gen, now_ms=now_ms, new_token=token_hash, expires_ms=expires_ms,
            max_sessions=max_sessions, revoke="all", reason="password_changed",
            password_hash=password_hash)

    @unavailable_on_redis_error
    async def revoke_token(self, name: str, token_hash: str) -> None:
        """Forget a token without a reason (tests and tools; ops use revoke_tokens)."""
        await self._redis.hdel(keys.tokens(name), token_hash)

    @unavailable_on_redis_error
    async def token_session(self, name: str, token_hash: str, *, now_ms: int) -> str | None:
        """The account generation a live token belongs to, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(keys.tokens(name), token_hash)
        pipe.hget(keys.account(name), "gen")
        expiry, gen = await pipe.execute()
        if expiry is None or gen is None or int(expiry) <= now_ms:
            return None
        return str(gen)

    @unavailable_on_redis_error
    async def ended_sessions(
        self, sessions: Sequence[tuple[str, str]], *, now_ms: int
    ) -> dict[tuple[str, str], str]:
        """Of (name, token sha256) pairs, the ended ones -> why (a kept reason or 'expired')."""
        pipe = self._redis.pipeline(transaction=False)
        for name, token_hash in sessions:
            pipe.hget(keys.tokens(name), token_hash)
            pipe.hget(keys.revoked(name), token_hash)
        replies = await pipe.execute()
        ended: dict[tuple[str, str], str] = {}
        for i, session in enumerate(sessions):
            expiry, record = replies[2 * i], replies[2 * i + 1]
            if expiry is not None and int(expiry) > now_ms:
                continue
            reason = str(record).rpartition(" ")[0] if record is not None else ""
            ended[session] = reason or EXPIRED
        return ended
