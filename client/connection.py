"""`ChatClient`: a session that survives server instances coming and going.

One supervisor task owns the connection: it dials the configured URLs in
turn with jittered backoff, resumes the session with its token, and then
waits until the connection ends. Events (pushes, `shutdown`,
`account_deleted`, `session_ended`) arrive here too. The ops themselves live in
client/session.py and client/messaging.py, the request path in
client/core.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.exceptions import InvalidURI, WebSocketException

from client.errors import (
    AccountDeleted,
    BadRequest,
    BadToken,
    ChatError,
    ClientClosed,
    RetryableError,
    SessionEnded,
)
from client.models import Message, State
from client.session import SessionOps
from client.transport import Transport

__all__ = ["ChatClient"]

log = logging.getLogger(__name__)

# A connection that lived this long counts as healthy: the next failure starts
# the backoff from the beginning again instead of continuing to grow it.
HEALTHY_CONNECTION_SECONDS = 5.0
# After a `shutdown` event the server closes us itself; this bounds the wait.
SHUTDOWN_GRACE_SECONDS = 2.0


class ChatClient(SessionOps):
    """An asyncio chat client over a list of equivalent server URLs.

    Use as `async with ChatClient(urls=[...]) as client:` or call `connect()`
    and `close()`. See docs/client.md for the full contract; the keyword
    arguments are those of `ClientCore.__init__`.
    """

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self, *, deadline: float | None = None) -> None:
        """Start the connection; return once one instance answers (or raise ConnectionLost).

        deadline: seconds to keep trying (default retry_deadline).
        """
        if self._closing:
            raise ClientClosed("client was closed")
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="chat-supervisor")
        loop = asyncio.get_running_loop()
        end = loop.time() + (self.retry_deadline if deadline is None else deadline)
        try:
            await self._wait_ready(end)
        except ChatError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop reconnecting (idempotent)."""
        self._closing = True
        self._inbox.end()
        self._ready.set()  # wake waiters so they see the client is closed
        tasks = [t for t in (self._supervisor, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._transport is not None:
            await self._transport.close()
        if self._state is not State.CLOSED:
            self._set_state(State.CLOSED)

    # --- the supervisor -----------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        established_before = False
        while not self._closing and self._fatal is None:
            url, wait = self._rotation.pick()
            if wait > 0:
                await asyncio.sleep(wait)
            self._set_state(State.RECONNECTING if established_before else State.CONNECTING)
            try:
                transport = await Transport.open(
                    url,
                    ssl_context=self._ssl,
                    open_timeout=self._open_timeout,
                    on_event=self._on_event,
                    on_closed=self._on_transport_closed,
                    ids=self._ids,
                )
            except InvalidURI as exc:
                self._fail(BadRequest(f"invalid server URL {url!r}: {exc}"))
                return
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._last_error = f"cannot connect to {url}: {exc or type(exc).__name__}"
                log.info("%s", self._last_error)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._transport = transport
            started = loop.time()
            try:
                await self._restore_session(transport)
            except RetryableError as exc:
                self._last_error = f"{url}: {exc}"
                transport.abort(f"session restore failed: {exc}")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except ChatError as exc:
                self._fail(exc)
                return
            established_before = True
            log.info("connected to %s as %s", url, self._username or "(no session)")
            self._ready.set()
            self._set_state(State.CONNECTED)
            await transport.wait_closed()
            if loop.time() - started > HEALTHY_CONNECTION_SECONDS:
                self._backoff.reset()
            if self._closing or self._fatal is not None:
                return
            self._last_error = f"{url}: {transport.close_reason}"
            self._set_state(State.RECONNECTING)
            if transport.retry_after is None:
                await asyncio.sleep(self._backoff.next_delay())
            # After a shutdown event the rotation avoids that URL for
            # retry_after and the next instance is dialled at once.

    async def _restore_session(self, transport: Transport) -> None:
        """Resume the session on a new connection, before any queued request goes out."""
        if self._token is None:
            return
        catch_up = self._inbox.begin_catch_up() if self._inbox.streaming else None
        try:
            reply = await transport.request(
                "resume", {"token": self._token}, reply_timeout=self.request_timeout
            )
        except BadToken:
            if self._ending_session:
                # The logout/delete in flight when the connection dropped did
                # happen; the op's retry will see an unauthenticated connection.
                self._token = None
                self._username = None
                return
            raise
        self._username = str(reply.get("username", self._username))
        self._window_announced(reply)
        if catch_up is not None:
            self._spawn(self._fetch_page(catch_up))

    def _on_transport_closed(self, transport: Transport) -> None:
        if transport is self._transport:
            self._ready.clear()

    def _on_event(self, transport: Transport, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        if event == "message":
            try:
                self._inbox.add_push(Message.from_wire(frame.get("message")))
            except BadRequest as exc:
                log.warning("ignoring malformed message event: %s", exc)
        elif event == "shutdown":
            retry_ms = frame.get("retry_after_ms")
            retry_after = retry_ms / 1000 if isinstance(retry_ms, int | float) else 0.0
            log.info("%s is shutting down (retry after %.1fs)", transport.url, retry_after)
            transport.retry_after = retry_after
            self._rotation.avoid(transport.url, retry_after)
            self._drain(transport, SHUTDOWN_GRACE_SECONDS)
        elif event == "session_ended":
            self._session_ended_elsewhere(str(frame.get("reason") or "unknown"))
        elif event == "account_deleted":
            self._fail(AccountDeleted(f"account {self._username or ''} was deleted".strip()))
        else:
            log.debug("ignoring unknown event %r", event)

    def _session_ended_elsewhere(self, reason: str) -> None:
        """The server ended our session: forget the token (never resume it) and say why.

        The connection stays usable for a new login; messages() raises
        SessionEnded, and so does nothing else: further ops get
        `unauthenticated` from the server until the application logs in.
        """
        log.info("session of %s ended: %s", self._username, reason)
        self.session_end_reason = reason
        self._session_ended()
        self._inbox.fail(SessionEnded.because(reason))

