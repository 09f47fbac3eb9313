"""The session part of `ChatClient`: account ops, the token, and how a session ends.

`Session` owns the token, the user name, the dedupe window the server
announced and why the server last ended the session. It resumes the session
on every new connection (`restore`, called by the link before the
connection is used) and tells the inbox part when a session starts or ends
through `InboxHooks`; requests go out through a `Caller` (the link).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from client.errors import BadToken, Unauthenticated
from client.models import LoginResult
from client.transport import Calls, Transport

__all__ = ["DEFAULT_DEDUPE_WINDOW_S", "Caller", "InboxHooks", "Session"]

log = logging.getLogger(__name__)

#: The dedupe window PROTOCOL.md gives as the default, for a server that
#: does not announce one.
DEFAULT_DEDUPE_WINDOW_S = 3600.0


class Caller(Calls, Protocol):
    """The request path the session needs (client/link.py)."""

    @property
    def request_timeout(self) -> float: ...


class InboxHooks(Protocol):
    """What the session tells the inbox part (client/messaging.py)."""

    def begin_catch_up(self) -> int | None:
        """Before a session starts: hold pushes until the inbox is fetched (None: nobody reads)."""

    def resumed(self, catch_up: int) -> None:
        """The session was resumed on a new connection: fetch the inbox for `catch_up`."""

    def session_started(self, catch_up: int | None) -> None:
        """A login or resume op succeeded: fetch the session's inbox if someone reads it."""

    def user_changed(self) -> None:
        """Another user logged in on this client: forget the previous user's stream."""

    def session_ended(self, reason: str) -> None:
        """The server ended the session (`session_ended` event) for `reason`."""


class Session:
    """Account and session ops, and the session state they keep."""

    def __init__(
        self, caller: Caller, inbox: InboxHooks, *, on_change: Callable[[], None]
    ) -> None:
        self._caller = caller
        self._inbox = inbox
        self._on_change = on_change  # username changed
        self.token: str | None = None
        self.username: str | None = None
        #: Why the server last ended our session (session_ended), or None.
        self.end_reason: str | None = None
        #: How long the server recognises a resent msg_id (login/resume replies).
        self.dedupe_window_s = DEFAULT_DEDUPE_WINDOW_S
        self._ending = False  # a logout/delete_account/change_password is in flight

    # --- ops --------------------------------------------------------------------------

    async def register(self, username: str, password: str) -> str:
        reply = await self._caller.call(
            "register",
            {"username": username, "password": password},
            retry_connection_loss=False,
        )
        return str(reply.get("username", username))

    async def login(self, username: str, password: str) -> LoginResult:
        catch_up = self._inbox.begin_catch_up()
        reply = await self._caller.call("login", {"username": username, "password": password})
        self._window_announced(reply)
        name = str(reply.get("username", username))
        self._started(name, str(reply["token"]))
        self._inbox.session_started(catch_up)
        return LoginResult(name, int(reply.get("unread", 0)))

    async def resume(self, token: str) -> LoginResult:
        catch_up = self._inbox.begin_catch_up()
        reply = await self._caller.call("resume", {"token": token})
        self._window_announced(reply)
        name = str(reply["username"])
        self._started(name, token)
        self._inbox.session_started(catch_up)
        return LoginResult(name, int(reply.get("unread", 0)))

    async def logout(self, *, everywhere: bool) -> None:
        await self._end("logout", {"everywhere": True} if everywhere else {})

    async def change_password(self, password: str, new_password: str) -> None:
        self._ending = True  # a resume with the old token may fail: not fatal
        try:
            reply = await self._caller.call(
                "change_password", {"password": password, "new_password": new_password},
                retry_connection_loss=False,
            )
        finally:
            self._ending = False
        self._started(self.username or "", str(reply["token"]))

    async def delete_account(self, password: str) -> None:
        await self._end("delete_account", {"password": password})

    async def list_users(self, pattern: str, *, page_size: int) -> AsyncIterator[str]:
        cursor: Any = None
        while True:
            args: dict[str, Any] = {"pattern": pattern, "limit": page_size}
            if cursor is not None:
                args["cursor"] = cursor
            reply = await self._caller.call("list_users", args)
            for name in reply.get("users") or []:
                yield str(name)
            cursor = reply.get("cursor")
            if cursor is None:
                return

    # --- the session on new connections and its end -----------------------------------

    async def restore(self, transport: Transport) -> None:
        """Resume the session on a new connection, before any queued request goes out."""
        if self.token is None:
            return
        catch_up = self._inbox.begin_catch_up()
        try:
            reply = await transport.request(
                "resume", {"token": self.token}, reply_timeout=self._caller.request_timeout
            )
        except BadToken:
            if self._ending:
                # The logout/delete in flight when the connection dropped did
                # happen; the op's retry will see an unauthenticated connection.
                self.token = None
                self.username = None
                return
            raise
        self.username = str(reply.get("username", self.username))
        self._window_announced(reply)
        if catch_up is not None:
            self._inbox.resumed(catch_up)

    def ended_elsewhere(self, reason: str) -> None:
        """The server ended our session: forget the token (never resume it) and say why.

        The connection stays usable for a new login; messages() raises
        SessionEnded, and so does nothing else: further ops get
        `unauthenticated` from the server until the application logs in.
        """
        log.info("session of %s ended: %s", self.username, reason)
        self.end_reason = reason
        self._ended()
        self._inbox.session_ended(reason)

    def forget_token(self) -> None:
        """The client ended for good: the token must never be used again."""
        self.token = None

    def _window_announced(self, reply: dict[str, Any]) -> None:
        """Keep the dedupe window a login or resume reply announced."""
        window_ms = reply.get("dedupe_window_ms")
        if isinstance(window_ms, int) and window_ms > 0:
            self.dedupe_window_s = window_ms / 1000

    def _started(self, username: str, token: str | None) -> None:
        if self.username is not None and username != self.username:
            self._inbox.user_changed()
        if token is not None:
            self.token = token
        self.end_reason = None
        self.username = username
        self._on_change()

    def _ended(self) -> None:
        self.token = None
        self.username = None
        self._on_change()

    async def _end(self, op: str, args: dict[str, Any]) -> None:
        self._ending = True
        try:
            try:
                await self._caller.call(op, args)
            except Unauthenticated:
                # Only fine if the op did happen before a reconnect: then
                # resuming got bad_token and dropped our token.
                if self.token is not None:
                    raise
        finally:
            self._ending = False
        self._ended()
        self.end_reason = None  # ended here, not from elsewhere
