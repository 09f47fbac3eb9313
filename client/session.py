"""Account and session ops of `ChatClient` (register, login, resume, logout, ...).

Kept apart from connection.py (connections, reconnects) and messaging.py
(message flow); the request path they all use is client/core.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from client.errors import Unauthenticated
from client.messaging import MessageOps
from client.models import LoginResult

__all__ = ["SessionOps"]


class SessionOps(MessageOps):
    """The session-level half of the public API."""

    async def register(self, username: str, password: str) -> str:
        """Create an account; returns the username. Does not log in.

        Retried on `unavailable` / `rate_limited` only: after a lost
        connection we cannot know whether it was created, and a blind retry
        would turn success into `username_taken`, so ConnectionLost surfaces.
        """
        reply = await self._call(
            "register",
            {"username": username, "password": password},
            retry_connection_loss=False,
        )
        return str(reply.get("username", username))

    async def login(self, username: str, password: str) -> LoginResult:
        """Log in; the token is kept to resume after reconnects. Returns the unread count."""
        catch_up = self._inbox.begin_catch_up() if self._inbox.streaming else None
        reply = await self._call("login", {"username": username, "password": password})
        self._window_announced(reply)
        name = str(reply.get("username", username))
        self._session_started(name, str(reply["token"]))
        self._start_catch_up(catch_up)
        return LoginResult(name, int(reply.get("unread", 0)))

    async def resume(self, token: str) -> LoginResult:
        """Take over an existing session by token (e.g. saved from an earlier login)."""
        catch_up = self._inbox.begin_catch_up() if self._inbox.streaming else None
        reply = await self._call("resume", {"token": token})
        self._window_announced(reply)
        name = str(reply["username"])
        self._session_started(name, token)
        self._start_catch_up(catch_up)
        return LoginResult(name, int(reply.get("unread", 0)))

    def _start_catch_up(self, catch_up: int | None) -> None:
        """Fetch the new session's inbox for messages() (if someone is iterating it)."""
        if not self._inbox.streaming:
            return
        if catch_up is None or not self._inbox.is_current(catch_up):
            # Switching user reset the stream (and its held pushes): start over;
            # the fetch returns whatever was pushed meanwhile.
            catch_up = self._inbox.begin_catch_up()
        self._spawn(self._fetch_page(catch_up))

    async def logout(self, *, everywhere: bool = False) -> None:
        """Revoke the token (everywhere: every token of the account, all devices).

        The connection stays open, unauthenticated; the sessions of the
        revoked tokens, on any instance, hear `session_ended`.
        """
        await self._end_session("logout", {"everywhere": True} if everywhere else {})

    async def change_password(self, password: str, new_password: str) -> None:
        """Change the password; this client keeps its session on a new token.

        Every other session of the account ends (`password_changed`). Not
        retried after a lost connection: the change may have happened, and
        then the old token is dead and the current password wrong, so the
        error surfaces (ConnectionLost) and the application logs in again.
        """
        self._ending_session = True  # a resume with the old token may fail: not fatal
        try:
            reply = await self._call(
                "change_password", {"password": password, "new_password": new_password},
                retry_connection_loss=False,
            )
        finally:
            self._ending_session = False
        self._session_started(self._username or "", str(reply["token"]))

    async def delete_account(self, password: str) -> None:
        """Delete the logged-in account, its sessions and its undelivered messages."""
        await self._end_session("delete_account", {"password": password})

    async def _end_session(self, op: str, args: dict[str, Any]) -> None:
        self._ending_session = True
        try:
            try:
                await self._call(op, args)
            except Unauthenticated:
                # Only fine if the op did happen before a reconnect: then
                # resuming got bad_token and dropped our token.
                if self._token is not None:
                    raise
        finally:
            self._ending_session = False
        self._session_ended()
        self.session_end_reason = None  # ended here, not from elsewhere

    async def list_users(self, pattern: str = "*", *, page_size: int = 100) -> AsyncIterator[str]:
        """Every user name matching the glob `pattern`, sorted, following cursors to the end."""
        cursor: Any = None
        while True:
            args: dict[str, Any] = {"pattern": pattern, "limit": page_size}
            if cursor is not None:
                args["cursor"] = cursor
            reply = await self._call("list_users", args)
            for name in reply.get("users") or []:
                yield str(name)
            cursor = reply.get("cursor")
            if cursor is None:
                return
