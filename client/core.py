"""The state every `ChatClient` layer shares, and the request path.

`ClientCore` holds the configuration, the session state and the current
transport. `_call` runs one op: it waits for a ready connection and retries
retryable failures (connection loss, `unavailable`, `rate_limited`) until
its deadline with the same arguments, so a `send` is always retried with
the same `msg_id` and the server's dedupe makes it happen once.

The layers on top: client/messaging.py (send, fetch, ack, messages),
client/session.py (register, login, ...), client/connection.py (the
supervisor that dials, resumes and reconnects: `ChatClient`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from client.backoff import Backoff, UrlRotation
from client.errors import (
    ChatError,
    ClientClosed,
    ConnectionLost,
    RateLimited,
    RequestTimeout,
    RetryableError,
    Unavailable,
)
from client.inbox import Inbox
from client.models import State, Status
from client.transport import Transport

__all__ = ["ClientCore"]

log = logging.getLogger(__name__)

# After `unavailable` we leave the instance ourselves once replies in flight are in.
UNAVAILABLE_GRACE_SECONDS = 0.5

#: The dedupe window PROTOCOL.md gives as the default, for a server that
#: does not announce one.
DEFAULT_DEDUPE_WINDOW_S = 3600.0
#: No resend starts later than this before the window ends: the window is
#: counted from the server's first receipt, after our first attempt left.
RESEND_MARGIN_S = 1.0


class ClientCore:
    """Configuration, session state and the request path of a chat client."""

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
        self.urls = list(urls)
        self._rotation = UrlRotation(self.urls)
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._backoff = Backoff(base=backoff_base, cap=backoff_cap)
        self.request_timeout = request_timeout
        self.retry_deadline = retry_deadline
        self._open_timeout = open_timeout
        self._page_size = fetch_page_size
        self._on_status = on_status
        self._ids = itertools.count(1)  # request ids, unique over all connections
        self._transport: Transport | None = None
        self._ready = asyncio.Event()  # set: a session-restored connection is usable
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._fatal: ChatError | None = None
        self._state = State.IDLE
        self._last_error = "not connected yet"
        self._token: str | None = None
        self._username: str | None = None
        self._ending_session = False  # a logout/delete_account is in flight
        #: Why the server last ended our session (session_ended), or None.
        self.session_end_reason: str | None = None
        self._pending_sends: dict[str, tuple[str, str]] = {}
        #: How long the server recognises a resent msg_id (login/resume replies).
        self.dedupe_window_s = DEFAULT_DEDUPE_WINDOW_S
        self._inbox = Inbox(dedupe_size=dedupe_size)
        self._last_yielded_seq: str | None = None
        self._last_acked_seq: str | None = None
        self._fetch_on_ack: int | None = None  # catch-up id waiting for an ack

    # --- status -----------------------------------------------------------------

    @property
    def status(self) -> Status:
        url = self._transport.url if self._transport and self._state is State.CONNECTED else None
        return Status(self._state, url, self._username)

    @property
    def url(self) -> str | None:
        """The URL of the instance we are connected to, or None."""
        return self.status.url

    @property
    def reconnecting(self) -> bool:
        return self._state is State.RECONNECTING

    @property
    def username(self) -> str | None:
        return self._username

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def pending_sends(self) -> int:
        """Sends not acknowledged yet (they are retried with the same msg_id)."""
        return len(self._pending_sends)

    def _set_state(self, state: State) -> None:
        self._state = state
        self._notify()

    def _notify(self) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(self.status)
        except Exception:
            # A broken status callback must not take the connection down.
            log.exception("on_status callback failed")

    # --- lifecycle helpers --------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, error: ChatError) -> None:
        """End the client for good with `error` (surfaced to every waiting call)."""
        if self._fatal is not None:
            return
        log.warning("chat session ended: %s", error)
        self._fatal = error
        self._token = None
        self._inbox.fail(error)
        self._ready.set()
        if self._transport is not None:
            self._transport.abort(str(error))
        self._set_state(State.CLOSED)

    def _check_usable(self) -> None:
        if self._fatal is not None:
            # A fresh instance each time: re-raising one object grows its traceback.
            raise type(self._fatal)(self._fatal.detail, code=self._fatal.code)
        if self._closing:
            raise ClientClosed("client was closed")
        if self._supervisor is None:
            raise ClientClosed("not connected: call connect() first")

    def _drain(self, transport: Transport, grace: float) -> None:
        """Stop using `transport` for new requests; replies in flight may still arrive."""
        if transport is self._transport and not transport.closed:
            self._ready.clear()
            self._set_state(State.RECONNECTING)
        transport.close_soon(grace)

    # --- requests -------------------------------------------------------------------

    async def _wait_ready(self, end: float) -> Transport:
        loop = asyncio.get_running_loop()
        while True:
            self._check_usable()
            transport = self._transport
            if self._ready.is_set() and transport is not None and not transport.closed:
                return transport
            remaining = end - loop.time()
            if remaining <= 0:
                raise ConnectionLost(f"no server reachable ({self._last_error})")
            try:
                async with asyncio.timeout(remaining):
                    await self._ready.wait()
            except TimeoutError:
                raise ConnectionLost(f"no server reachable ({self._last_error})") from None

    async def _call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        retry_connection_loss: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Run one op, retrying retryable failures until `deadline` seconds have passed."""
        loop = asyncio.get_running_loop()
        end = loop.time() + (self.retry_deadline if deadline is None else deadline)
        backoff = Backoff(base=self._backoff_base, cap=self._backoff_cap)
        while True:
            transport = await self._wait_ready(end)
            wait = max(0.001, min(self.request_timeout, end - loop.time()))
            try:
                return await transport.request(op, args or {}, reply_timeout=wait)
            except RetryableError as exc:
                self._check_usable()
                lost = isinstance(exc, ConnectionLost | RequestTimeout)
                if (lost and not retry_connection_loss) or loop.time() >= end:
                    raise
                log.info("%s failed (%s); retrying", op, exc)
                if isinstance(exc, Unavailable) and len(self.urls) > 1:
                    # This instance cannot serve (e.g. lost its Redis); another may.
                    self._drain(transport, UNAVAILABLE_GRACE_SECONDS)
                if isinstance(exc, Unavailable | RateLimited):
                    await asyncio.sleep(min(backoff.next_delay(), max(0.0, end - loop.time())))
                # On connection loss the supervisor reconnects; _wait_ready waits.

    # --- session (used by SessionOps) -------------------------------------------------

    def _window_announced(self, reply: dict[str, Any]) -> None:
        """Keep the dedupe window a login or resume reply announced."""
        window_ms = reply.get("dedupe_window_ms")
        if isinstance(window_ms, int) and window_ms > 0:
            self.dedupe_window_s = window_ms / 1000

    def _session_started(self, username: str, token: str | None) -> None:
        if self._username is not None and username != self._username:
            self._inbox.reset()
        if token is not None:
            self._token = token
        self.session_end_reason = None
        self._username = username
        self._notify()

    def _session_ended(self) -> None:
        self._token = None
        self._username = None
        self._notify()
