"""The transport part of `ChatClient`: one usable connection across many URLs.

`Link` owns the connection: a supervisor task dials the configured URLs in
turn with jittered backoff, lets the session part resume on the new
connection (`on_connected`) before any queued request goes out, and waits
until the connection ends. `call` runs one op: it waits for a ready
connection and retries retryable failures (connection loss, `unavailable`,
`rate_limited`) until its deadline with the same arguments, so a `send` is
always retried with the same `msg_id` and the server's dedupe makes it
happen once. The link handles `shutdown` itself and hands other events on.
It knows nothing about sessions or messages.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from websockets.exceptions import InvalidURI, WebSocketException

from client.backoff import Backoff, UrlRotation
from client.errors import (
    BadRequest,
    ChatError,
    ClientClosed,
    ConnectionLost,
    RateLimited,
    RequestTimeout,
    RetryableError,
    Unavailable,
)
from client.models import State
from client.transport import EventHandler, Transport

__all__ = ["Link"]

log = logging.getLogger(__name__)

# After `unavailable` we leave the instance ourselves once replies in flight are in.
UNAVAILABLE_GRACE_SECONDS = 0.5
# A connection that lived this long counts as healthy: the next failure starts
# the backoff from the beginning again instead of continuing to grow it.
HEALTHY_CONNECTION_SECONDS = 5.0
# After a `shutdown` event the server closes us itself; this bounds the wait.
SHUTDOWN_GRACE_SECONDS = 2.0


class Link:
    """Connections to a list of equivalent server URLs and the request path over them."""

    def __init__(
        self,
        *,
        urls: Sequence[str],
        ssl_context: ssl.SSLContext | None,
        backoff_base: float,
        backoff_cap: float,
        request_timeout: float,
        retry_deadline: float,
        open_timeout: float,
        on_connected: Callable[[Transport], Awaitable[None]],
        on_event: EventHandler,
        on_failed: Callable[[ChatError], None],
        on_change: Callable[[], None],
    ) -> None:
        """Configure (no I/O until `connect()`).

        on_connected: runs on each new connection before it is used; a
            RetryableError drops the connection, any other ChatError ends the client.
        on_event: every event but `shutdown`, which the link handles itself.
        on_failed: the client ended for good with this error (see `fail`).
        on_change: `state` or `url` changed.
        """
        self.urls = list(urls)
        self._rotation = UrlRotation(self.urls)
        self._ssl = ssl_context
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._backoff = Backoff(base=backoff_base, cap=backoff_cap)
        self.request_timeout = request_timeout
        self.retry_deadline = retry_deadline
        self._open_timeout = open_timeout
        self._on_connected = on_connected
        self._on_event = on_event
        self._on_failed = on_failed
        self._on_change = on_change
        self._ids = itertools.count(1)  # request ids, unique over all connections
        self._transport: Transport | None = None
        self._ready = asyncio.Event()  # set: a session-restored connection is usable
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._fatal: ChatError | None = None
        self._last_error = "not connected yet"
        self.state = State.IDLE

    @property
    def url(self) -> str | None:
        """The URL of the instance we are connected to, or None."""
        if self._transport is not None and self.state is State.CONNECTED:
            return self._transport.url
        return None

    def _set_state(self, state: State) -> None:
        self.state = state
        self._on_change()

    # --- lifecycle ------------------------------------------------------------------

    async def connect(self, *, deadline: float | None = None) -> None:
        """Start the supervisor; return once one instance answers (or raise ConnectionLost)."""
        if self._closing:
            raise ClientClosed("client was closed")
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="chat-supervisor")
        loop = asyncio.get_running_loop()
        end = loop.time() + (self.retry_deadline if deadline is None else deadline)
        await self._wait_ready(end)

    async def close(self) -> None:
        """Close the connection and stop reconnecting (idempotent)."""
        self._closing = True
        self._ready.set()  # wake waiters so they see the client is closed
        tasks = [t for t in (self._supervisor, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._transport is not None:
            await self._transport.close()
        if self.state is not State.CLOSED:
            self._set_state(State.CLOSED)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background until it ends or the client closes."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def fail(self, error: ChatError) -> None:
        """End the client for good with `error` (surfaced to every waiting call)."""
        if self._fatal is not None:
            return
        log.warning("chat session ended: %s", error)
        self._fatal = error
        self._on_failed(error)
        self._ready.set()
        if self._transport is not None:
            self._transport.abort(str(error))
        self._set_state(State.CLOSED)

    def check_usable(self) -> None:
        """Raise the error that ended the client, or ClientClosed if it is not running."""
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
            self.check_usable()
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

    async def call(
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
                self.check_usable()
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

    # --- the supervisor -------------------------------------------------------------

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
                    on_event=self._event,
                    on_closed=self._transport_closed,
                    ids=self._ids,
                )
            except InvalidURI as exc:
                self.fail(BadRequest(f"invalid server URL {url!r}: {exc}"))
                return
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._last_error = f"cannot connect to {url}: {exc or type(exc).__name__}"
                log.info("%s", self._last_error)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._transport = transport
            started = loop.time()
            try:
                await self._on_connected(transport)
            except RetryableError as exc:
                self._last_error = f"{url}: {exc}"
                transport.abort(f"session restore failed: {exc}")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except ChatError as exc:
                self.fail(exc)
                return
            established_before = True
            log.info("connected to %s", url)
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

    def _transport_closed(self, transport: Transport) -> None:
        if transport is self._transport:
            self._ready.clear()

    def _event(self, transport: Transport, frame: dict[str, Any]) -> None:
        if frame.get("event") != "shutdown":
            self._on_event(transport, frame)
            return
        retry_ms = frame.get("retry_after_ms")
        retry_after = retry_ms / 1000 if isinstance(retry_ms, int | float) else 0.0
        log.info("%s is shutting down (retry after %.1fs)", transport.url, retry_after)
        transport.retry_after = retry_after
        self._rotation.avoid(transport.url, retry_after)
        self._drain(transport, SHUTDOWN_GRACE_SECONDS)
