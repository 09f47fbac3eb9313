"""One WebSocket connection: frames in -> protocol -> ops -> replies and events out.

Requests are handled as server/conn/requests.py says: one at a time, except
that sends a client pipelines run together as one ordered group; replies
always come in request order. A frame is written at once when nothing waits before it and
the socket takes it; otherwise it goes to one bounded outbox drained by a
writer task: a client that stops reading is cut off instead of growing
server memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from server import metrics
from server.conn.requests import RequestHandler
from server.conn.services import Services
from server.wire import client_address, errors, protocol

log = logging.getLogger(__name__)

CLOSE_ACCOUNT_DELETED = 4001
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008

_HANDSHAKE_REQUEST = Request(path="/ws", headers=Headers())
_HANDSHAKE_RESPONSE = Response(status_code=101, reason_phrase="Switching Protocols",
                               headers=Headers())


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class Connection(RequestHandler):
    """A client connection and, once logged in, its session."""

    # Slots: thousands of idle connections each pay for an instance dict otherwise.
    __slots__ = (
        "_busy",
        "_closed",
        "_drain_cancelled",
        "_draining",
        "_limits",
        "_outbox",
        "_outbox_bytes",
        "_reading",
        "_task",
        "_writer",
        "address",
        "address_key",
        "conn_id",
        "gen",
        "last_seq",
        "services",
        "token_hash",
        "username",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, services: Services, *, conn_id: str, address: str
    ) -> None:
        self.ws = ws
        self.services = services
        self.conn_id = conn_id
        self.address = address  # the client address (server/wire/client_address.py)
        self.address_key = client_address.limit_key(address)  # what per-address limits count
        self.username: str | None = None
        self.gen = ""
        self.token_hash: str | None = None
        self.last_seq = "0-0"
        settings = services.settings
        self._limits = protocol.limits(
            max_body_chars=settings.max_body_chars, max_list_limit=settings.max_list_limit
        )
        # Created when a frame first has to wait (a client slower than us).
        self._outbox: deque[bytes | _Close] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outbox_bytes = 0
        self._closed = False
        self._busy = False
        self._draining = False
        self._task: asyncio.Task[Any] | None = None
        self._drain_cancelled = False
        self._reading = False
        self._init_budget(float(settings.request_burst))

    # Lifecycle ------------------------------------------------------------------
    # An idle connection owns no task of its own: requests are read in the
    # handler task websockets gives us, and a writer task exists only while
    # frames wait in the outbox. That keeps an idle connection small.

    async def serve(self) -> None:
        metrics.CONNECTIONS.inc()
        self._task = asyncio.current_task()
        # The handshake is done and nothing reads its headers again: one
        # shared stand-in (websockets only checks that a request was seen)
        # saves ~2 KiB per idle connection.
        self.ws.request, self.ws.response = _HANDSHAKE_REQUEST, _HANDSHAKE_RESPONSE
        try:
            try:
                await self._read_loop()
            except asyncio.CancelledError:
                if not self._drain_cancelled or self._uncancel() > 0:
                    raise  # someone else cancelled us too: honour it
            if self._draining and not self._closed:
                self._send(protocol.shutdown_event(self.services.settings.retry_after_ms))
                self._send(_Close(CLOSE_GOING_AWAY, "server shutting down"))
                if self._writer is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._writer), timeout=5)
        finally:
            if self._writer is not None:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
            await self.end_session()
            metrics.CONNECTIONS.dec()

    def _uncancel(self) -> int:
        """Take back our own drain cancel; how many cancels are still pending."""
        self._drain_cancelled = False
        return self._task.uncancel() if self._task is not None else 0

    def drain(self) -> None:
        """Graceful stop: finish the request in hand, read nothing more."""
        self._draining = True
        # Cancel only a read in progress: never the request in hand, nor the
        # cleanup after the loop, which must detach the session.
        if self._reading and not self._busy and self._task is not None \
                and not self._drain_cancelled:
            self._drain_cancelled = True
            self._task.cancel()

    async def _read_loop(self) -> None:
        self._reading = True
        try:
            while not self._draining:
                try:
                    frame = await self.ws.recv()
                except ConnectionClosed:
                    return
                self._busy = True
                try:
                    await self._handle(frame)
                finally:
                    self._busy = False
        finally:
            self._reading = False

    async def _write_loop(self) -> None:
        outbox = self._outbox
        try:
            while outbox:
                item = outbox.popleft()
                if isinstance(item, _Close):
                    await self.ws.close(item.code, item.reason)
                    return
                self._outbox_bytes -= len(item)
                await self.ws.send(item, text=True)
        except ConnectionClosed:
            return
        finally:
            self._writer = None

    def _send(self, frame: bytes | _Close) -> None:
        if self._closed:
            return
        if self._writer is None and type(frame) is bytes and self._write_now(frame):
            return
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        size = 0 if isinstance(frame, _Close) else len(frame)
        # Frames count (pushes) and so do bytes: a client that pipelines big
        # fetches without reading must not make us hold gigabytes of replies.
        # One frame of any size fits an empty outbox, so no reply is too big.
        settings = self.services.settings
        if outbox and (
            len(outbox) >= settings.max_outbox_frames
            or self._outbox_bytes + size > settings.max_outbox_bytes
        ):
            self._cut_off()
            return
        self._outbox_bytes += size
        outbox.append(frame)
        if isinstance(frame, _Close):
            self._closed = True  # nothing may follow the close frame
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())

    def _write_now(self, frame: bytes) -> bool:
        """Write `frame` without a task when nothing waits before it; False: queue it.

        Only while no frame waits in the outbox (order) and the socket's
        buffer is below its high-water mark (websockets' `paused`): a client
        that does not read still fills the outbox and is cut off. This is
        what `ws.send` does minus its task switch and context manager, which
        cost more than the write itself on the hot path.
        """
        ws = self.ws
        if ws.paused or ws.protocol.state is not State.OPEN:
            return False
        ws.protocol.send_text(frame)
        try:
            ws.send_data()
        except Exception as exc:  # the socket is gone: as ws.send would, drop it
            log.debug("write failed conn=%s: %s", self.conn_id, exc)
            self._closed = True
            ws.transport.abort()
        return True

    def _cut_off(self) -> None:
        """A client that does not read loses its connection, not our memory."""
        self._closed = True
        metrics.SLOW_CONSUMERS.inc()
        log.warning("closing slow consumer conn=%s user=%s", self.conn_id, self.username)
        if self._outbox is not None:
            self._outbox.clear()
        self._outbox_bytes = 0
        self.ws.transport.abort()

    # Session (what ops and delivery call) -------------------------------------

    def require_session(self) -> str:
        if self.username is None:
            raise errors.Unauthenticated("log in or resume first")
        return self.username

    async def start_session(self, name: str, gen: str, token_hash: str) -> None:
        await self.end_session()
        self.username, self.gen, self.token_hash = name, gen, token_hash
        try:
            await self.services.delivery.attach(name, self)
        except errors.ChatError:
            # No half-open session: the client was told the login failed.
            await self.end_session()
            raise

    async def end_session(self) -> None:
        name = self.username
        self.username, self.gen, self.token_hash = None, "", None
        if name is not None:
            await self.services.delivery.detach(name, self)

    def deliver(self, message: dict[str, Any]) -> None:
        self._send(protocol.message_event(message))

    def push(self, frame: bytes) -> None:
        """Push an already encoded message event (shared by a user's sessions)."""
        self._send(frame)

    def kick_deleted(self) -> None:
        """The account is gone (deleted elsewhere): tell the client and close."""
        if self.username is None:
            return
        log.info("closing session of deleted account user=%s conn=%s", self.username, self.conn_id)
        task = asyncio.create_task(self.end_session())  # ends the session before it yields
        task.add_done_callback(_log_failure)
        self._send(protocol.account_deleted_event())
        self._send(_Close(CLOSE_ACCOUNT_DELETED, "account deleted"))

    def end_by(self, reason: str, token_hash: str) -> None:
        """The session's token was revoked or expired: tell the client; stay open.

        Only while the session still uses `token_hash`: a change_password
        on this connection may have given it a new token meanwhile.
        """
        name = self.username
        if name is None or self.token_hash != token_hash or self._closed:
            return
        log.info("session ended user=%s conn=%s addr=%s reason=%s",
                 name, self.conn_id, self.address, reason)
        self.username, self.gen, self.token_hash = None, "", None
        task = asyncio.create_task(self.services.delivery.detach(name, self))
        task.add_done_callback(_log_failure)
        metrics.SESSIONS_ENDED.labels(reason).inc()
        self._send(protocol.session_ended_event(reason))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("session cleanup failed: %s", task.exception())
