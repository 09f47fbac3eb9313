"""What an op needs of the connection it serves: the narrow Session protocol.

Ops (conn/ops.py) and the request handler (conn/requests.py) take a
Session, not ws_handler.Connection, so the connection layer above them is
never imported from below; Connection is one implementation.
"""

from __future__ import annotations

from typing import Protocol

from server.conn.services import Services


class Session(Protocol):
    """A client connection's identity and, once logged in, its session."""

    services: Services
    conn_id: str
    #: The client address (after trusted proxies) and what per-address limits count.
    address: str
    address_key: str
    #: The session: None before login; `gen` is the account generation, and
    #: `token_hash` may be swapped while a password change replaces the token.
    username: str | None
    gen: str
    token_hash: str | None

    def require_session(self) -> str:
        """The user name, or raise Unauthenticated."""
        ...

    async def start_session(self, name: str, gen: str, token_hash: str) -> None:
        """Begin a session (ending any earlier one): pushes start."""
        ...

    async def end_session(self) -> None:
        """End the session, if any; the connection stays open."""
        ...
