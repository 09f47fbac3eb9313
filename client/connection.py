"""`ChatClient`: a session that survives server instances coming and going.

The public class is a facade over three parts, each owning its state:
`Link` (client/link.py: connections across URLs, reconnects, the request
path), `Session` (client/session.py: account ops, the token, how a session
ends) and `Messaging` (client/messaging.py: sends, fetch, ack, the
`messages()` stream). The parts talk through the narrow protocols they
declare; this module wires them together and routes server events.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from client.errors import AccountDeleted, BadRequest, ChatError
from client.link import Link
from client.messaging import Messaging
from client.models import FetchResult, LoginResult, Message, SendResult, State, Status
from client.session import Session
from client.transport import Transport

__all__ = ["ChatClient"]

log = logging.getLogger(__name__)


class ChatClient:
    """An asyncio chat client over a list of equivalent server URLs.

    Use as `async with ChatClient(urls=[...]) as client:` or call `connect()`
    and `close()`. See docs/client.md for the full contract.
    """

    def __init__(
        self,
        *,
        urls: Sequence[str],
        ca_file: str | None = None,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        request_timeout: float = 10.0,
        retry_deadline: float = 60.0,
        open_timeout: float = 5.0,
        dedupe_size: int = 100_000,
        fetch_page_size: int = 1000,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        """Configure (no I/O until `connect()`).

        urls: server WebSocket URLs (ws:// or wss://), all serving the same service.
        ca_file: PEM bundle to verify wss:// servers (default: system CAs).
        backoff_base / backoff_cap: reconnect and retry delays in seconds.
        request_timeout: max seconds to wait for one reply before dropping the connection.
        retry_deadline: max seconds an op keeps retrying retryable failures.
        open_timeout: max seconds for one WebSocket handshake.
        dedupe_size: how many (sender, msg_id) pairs messages() remembers.
        fetch_page_size: inbox page size (PROTOCOL.md max 1000) for catching up.
        on_status: called with a `Status` whenever state, URL or user changes.
        """
        self._on_status = on_status
        self._link = Link(
            urls=urls,
            ssl_context=ssl.create_default_context(cafile=ca_file) if ca_file else None,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            request_timeout=request_timeout,
            retry_deadline=retry_deadline,
            open_timeout=open_timeout,
            on_connected=self._connected,
            on_event=self._event,
            on_failed=self._failed,
            on_change=self._notify,
        )
        self._messaging = Messaging(
            self._link, dedupe_size=dedupe_size, page_size=fetch_page_size
        )
        self._session = Session(self._link, self._messaging, on_change=self._notify)

    # --- configuration and status -----------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return self._link.urls

    @property
    def request_timeout(self) -> float:
        return self._link.request_timeout

    @request_timeout.setter
    def request_timeout(self, seconds: float) -> None:
        self._link.request_timeout = seconds

    @property
    def retry_deadline(self) -> float:
        return self._link.retry_deadline

    @retry_deadline.setter
    def retry_deadline(self, seconds: float) -> None:
        self._link.retry_deadline = seconds

    @property
    def status(self) -> Status:
        return Status(self._link.state, self._link.url, self._session.username)

    @property
    def url(self) -> str | None:
        """The URL of the instance we are connected to, or None."""
        return self._link.url

    @property
    def reconnecting(self) -> bool:
        return self._link.state is State.RECONNECTING

    @property
    def username(self) -> str | None:
        return self._session.username

    @property
    def token(self) -> str | None:
        return self._session.token

    @property
    def session_end_reason(self) -> str | None:
        """Why the server last ended our session (session_ended), or None."""
        return self._session.end_reason

    @property
    def dedupe_window_s(self) -> float:
        """How long the server recognises a resent msg_id (login/resume replies)."""
        return self._session.dedupe_window_s

    @property
    def pending_sends(self) -> int:
        """Sends not acknowledged yet (they are retried with the same msg_id)."""
        return self._messaging.pending_sends

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self, *, deadline: float | None = None) -> None:
        """Start the connection; return once one instance answers (or raise ConnectionLost).

        deadline: seconds to keep trying (default retry_deadline).
        """
        try:
            await self._link.connect(deadline=deadline)
        except ChatError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop reconnecting (idempotent)."""
        self._messaging.end()
        await self._link.close()

    # --- session ops (client/session.py) ------------------------------------------------

    async def register(self, username: str, password: str) -> str:
        """Create an account; returns the username. Does not log in.

        Retried on `unavailable` / `rate_limited` only: after a lost
        connection we cannot know whether it was created, and a blind retry
        would turn success into `username_taken`, so ConnectionLost surfaces.
        """
        return await self._session.register(username, password)

    async def login(self, username: str, password: str) -> LoginResult:
        """Log in; the token is kept to resume after reconnects. Returns the unread count."""
        return await self._session.login(username, password)

    async def resume(self, token: str) -> LoginResult:
        """Take over an existing session by token (e.g. saved from an earlier login)."""
        return await self._session.resume(token)

    async def logout(self, *, everywhere: bool = False) -> None:
        """Revoke the token (everywhere: every token of the account, all devices).

        The connection stays open, unauthenticated; the sessions of the
        revoked tokens, on any instance, hear `session_ended`.
        """
        await self._session.logout(everywhere=everywhere)

    async def change_password(self, password: str, new_password: str) -> None:
        """Change the password; this client keeps its session on a new token.

        Every other session of the account ends (`password_changed`). Not
        retried after a lost connection: the change may have happened, and
        then the old token is dead and the current password wrong, so the
        error surfaces (ConnectionLost) and the application logs in again.
        """
        await self._session.change_password(password, new_password)

    async def delete_account(self, password: str) -> None:
        """Delete the logged-in account, its sessions and its undelivered messages."""
        await self._session.delete_account(password)

    def list_users(self, pattern: str = "*", *, page_size: int = 100) -> AsyncIterator[str]:
        """Every user name matching the glob `pattern`, sorted, following cursors to the end."""
        return self._session.list_users(pattern, page_size=page_size)

    # --- message ops (client/messaging.py) ----------------------------------------------

    async def send(
        self, to: str, body: str, *, msg_id: str | None = None, deadline: float | None = None
    ) -> SendResult:
        """Send `body` to `to`; returns once the server stored it durably.

        The msg_id (uuid4 hex unless given) is kept while the send is not
        acknowledged; after a connection loss, `unavailable` or `rate_limited`
        the same request is sent again (on whichever instance we reconnect
        to) until `deadline` seconds (default retry_deadline) have passed.
        Resending with the same msg_id is idempotent on the server only
        within its dedupe window (announced at login): no resend starts
        later than RESEND_MARGIN_S before the window ends, and a send still
        unanswered then raises `Unconfirmed`.
        """
        return await self._messaging.send(
            to, body, msg_id=msg_id, deadline=deadline, session=self._session
        )

    async def fetch(self, limit: int = 100) -> FetchResult:
        """Undelivered messages, oldest first, without removing them (no dedupe here)."""
        return await self._messaging.fetch(limit)

    async def ack(self, message: Message | str) -> int:
        """Remove `message` (or a seq) and every older one from the inbox; returns how many."""
        return await self._messaging.ack(message)

    def messages(self, *, auto_ack: bool = False) -> AsyncIterator[Message]:
        """Yield incoming messages in inbox order, each (sender, msg_id) once.

        Starts with the inbox backlog, then live pushes; after every reconnect
        the inbox is fetched again so nothing queued meanwhile is missed.
        With auto_ack=False the application calls `ack(message)` after
        handling each one (acks are cumulative). With auto_ack=True a message
        is acked when the next one is requested, i.e. after the loop body
        handled it. Ends when the client is closed; raises AccountDeleted,
        BadToken or SessionEnded when the session ends.
        """
        return self._messaging.stream(auto_ack=auto_ack, session=self._session)

    # --- wiring between the parts -------------------------------------------------------

    async def _connected(self, transport: Transport) -> None:
        await self._session.restore(transport)

    def _event(self, transport: Transport, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        if event == "message":
            try:
                self._messaging.pushed(Message.from_wire(frame.get("message")))
            except BadRequest as exc:
                log.warning("ignoring malformed message event: %s", exc)
        elif event == "session_ended":
            self._session.ended_elsewhere(str(frame.get("reason") or "unknown"))
        elif event == "account_deleted":
            name = self._session.username or ""
            self._link.fail(AccountDeleted(f"account {name} was deleted".strip()))
        else:
            log.debug("ignoring unknown event %r from %s", event, transport.url)

    def _failed(self, error: ChatError) -> None:
        self._session.forget_token()
        self._messaging.fail(error)

    def _notify(self) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(self.status)
        except Exception:
            # A broken status callback must not take the connection down.
            log.exception("on_status callback failed")
