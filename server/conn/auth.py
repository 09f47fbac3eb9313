"""Passwords (argon2id), session tokens and login throttling.

Hashing runs on the threads of server/conn/hashing.py (bounded per instance
and per address): argon2 is deliberately slow and must not stall the
event loop that serves every other connection.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.conn.hashing import HashSlots

TOKEN_BYTES = 32  # 256 random bits


class Passwords:
    """argon2id hashing with the parameters from settings."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int,
                 slots: HashSlots) -> None:
        self.slots = slots
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified when the name is unknown, so a miss costs what a hit costs.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password: str, *, address: str) -> str:
        return await self.slots.run(address, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str, *, address: str) -> bool:
        return await self.slots.run(address, self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_token(name: str) -> str:
    """A token naming its user, so its record lives in that user's slot."""
    return f"{name}.{secrets.token_urlsafe(TOKEN_BYTES)}"


def split_token(token: str) -> tuple[str, str] | None:
    """(name, token) if the token has our shape, else None."""
    name, sep, secret = token.rpartition(".")
    if not sep or not name or len(secret) < 40 or len(token) > 200:
        return None
    return name, token


def token_hash(token: str) -> str:
    """Only the hash is stored: a leaked database yields no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()
