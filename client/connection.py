"""`ChatClient`: a session that survives server instances coming and going.

One supervisor task owns the connection: it dials the configured URLs in
turn with jittered backoff, resumes the session with its token, and then
waits until the connection ends. Every public op goes through `_call`, which
waits for a ready connection and retries retryable failures (connection
loss, `unavailable`, `rate_limited`) until its deadline, with the same
arguments, so a `send` is always retried with the same `msg_id` and the
server's dedupe makes it happen once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from websockets.exceptions import InvalidURI, WebSocketException

from client.backoff import Backoff, UrlRotation
from client.errors import (
    AccountDeleted,
    BadRequest,
    BadToken,
    ChatError,
    ClientClosed,
    ConnectionLost,
    RateLimited,
    RequestTimeout,
    RetryableError,
    Unauthenticated,
    Unavailable,
)
from client.inbox import Inbox, PageEnd
from client.models import FetchResult, Message, SendResult, State, Status
from client.session import SessionOps
from client.transport import Transport

__all__ = ["ChatClient"]

log = logging.getLogger(__name__)

# A connection that lived this long counts as healthy: the next failure starts
# the backoff from the beginning again instead of continuing to grow it.
HEALTHY_CONNECTION_SECONDS = 5.0
# After a `shutdown` event the server closes us itself; this bounds the wait.
SHUTDOWN_GRACE_SECONDS = 2.0
# After `unavailable` we leave the instance ourselves once replies in flight are in.
UNAVAILABLE_GRACE_SECONDS = 0.5


class ChatClient(SessionOps):
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
        self._pending_sends: dict[str, tuple[str, str]] = {}
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
        elif event == "account_deleted":
            self._fail(AccountDeleted(f"account {self._username or ''} was deleted".strip()))
        else:
            log.debug("ignoring unknown event %r", event)

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

    # --- messages ---------------------------------------------------------------------

    async def send(
        self, to: str, body: str, *, msg_id: str | None = None, deadline: float | None = None
    ) -> SendResult:
        """Send `body` to `to`; returns once the server stored it durably.

        The msg_id (uuid4 hex unless given) is kept while the send is not
        acknowledged; after a connection loss, `unavailable` or `rate_limited`
        the same request is sent again (on whichever instance we reconnect
        to) until `deadline` seconds (default retry_deadline) have passed.
        Resending with the same msg_id is idempotent on the server.
        """
        msg_id = msg_id or uuid.uuid4().hex
        self._pending_sends[msg_id] = (to, body)
        try:
            reply = await self._call(
                "send", {"to": to, "body": body, "msg_id": msg_id}, deadline=deadline
            )
        finally:
            self._pending_sends.pop(msg_id, None)
        return SendResult(str(reply.get("msg_id", msg_id)), int(reply["ts"]))

    async def fetch(self, limit: int = 100) -> FetchResult:
        """Undelivered messages, oldest first, without removing them (no dedupe here)."""
        reply = await self._call("fetch", {"limit": limit})
        messages = [Message.from_wire(m) for m in reply.get("messages") or []]
        return FetchResult(messages, int(reply.get("unread", 0)))

    async def ack(self, message: Message | str) -> int:
        """Remove `message` (or a seq) and every older one from the inbox; returns how many."""
        seq = message.seq if isinstance(message, Message) else message
        reply = await self._call("ack", {"seq": seq})
        self._last_acked_seq = seq
        if self._fetch_on_ack is not None:
            catch_up, self._fetch_on_ack = self._fetch_on_ack, None
            self._spawn(self._fetch_page(catch_up))
        return int(reply.get("removed", 0))

    async def messages(self, *, auto_ack: bool = False) -> AsyncIterator[Message]:
        """Yield incoming messages in inbox order, each (sender, msg_id) once.

        Starts with the inbox backlog, then live pushes; after every reconnect
        the inbox is fetched again so nothing queued meanwhile is missed.
        With auto_ack=False the application calls `ack(message)` after
        handling each one (acks are cumulative). With auto_ack=True a message
        is acked when the next one is requested, i.e. after the loop body
        handled it. Ends when the client is closed; raises AccountDeleted or
        BadToken when the session ends.
        """
        if self._inbox.streaming:
            raise RuntimeError("messages() is already being iterated")
        self._check_usable()
        self._inbox.reset()
        self._inbox.streaming = True
        if self._token is not None:
            self._spawn(self._fetch_page(self._inbox.begin_catch_up()))
        unacked: str | None = None
        try:
            while True:
                if auto_ack and unacked is not None:
                    await self.ack(unacked)
                    unacked = None
                item = await self._inbox.get()
                if item is None:
                    return
                if isinstance(item, PageEnd):
                    self._page_consumed(item.catch_up_id, auto_ack)
                    continue
                if auto_ack:
                    unacked = item.seq  # duplicates are acked along with the rest
                if not self._inbox.seen.add(item.key):
                    log.debug("dropping duplicate message %s from %s", item.msg_id, item.sender)
                    continue
                self._last_yielded_seq = item.seq
                yield item
        finally:
            self._inbox.streaming = False

    def _page_consumed(self, catch_up: int, auto_ack: bool) -> None:
        """The application pulled a whole page and the inbox holds more: fetch the next.

        Fetch does not remove messages, so the next page is only fetched once
        this one is acked; otherwise it would return the same messages.
        """
        if not self._inbox.is_current(catch_up):
            return
        if auto_ack or self._last_acked_seq == self._last_yielded_seq:
            self._spawn(self._fetch_page(catch_up))
        else:
            self._fetch_on_ack = catch_up

    async def _fetch_page(self, catch_up: int) -> None:
        try:
            result = await self.fetch(self._page_size)
        except Unauthenticated:
            return  # logged out meanwhile
        except ChatError as exc:
            # The next reconnect starts a fresh catch-up, so nothing is lost.
            log.warning("fetching the inbox failed: %s", exc)
            return
        self._inbox.add_page(catch_up, result.messages, result.unread)

    # --- session (used by SessionOps) -------------------------------------------------

    def _session_started(self, username: str, token: str | None) -> None:
        if self._username is not None and username != self._username:
            self._inbox.reset()
        if token is not None:
            self._token = token
        self._username = username
        self._notify()

    def _session_ended(self) -> None:
        self._token = None
        self._username = None
        self._notify()

