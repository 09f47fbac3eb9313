"""One WebSocket connection: frames in -> protocol -> ops -> replies and events out.

Requests are handled as server/conn/requests.py says: one at a time, except
that sends a client pipelined run together as one ordered group; replies
always come in request order. Every frame goes straight to the transport,
whose write buffer is the client's outbox, bounded by --max-outbox-bytes:
over it, the client's requests are not read (backpressure) and a push
that does not fit ends the connection; a client that drains nothing for
--write-timeout-s is closed (1008). Nobody's slowness grows server memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from server import metrics
from server.conn import ws_adapter
from server.conn.requests import RequestHandler
from server.conn.services import Services
from server.wire import client_address, errors, protocol

log = logging.getLogger(__name__)

CLOSE_ACCOUNT_DELETED = 4001
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008

#: How often a client over its outbox budget is checked for progress.
DRAIN_POLL_S = 0.1

_HANDSHAKE_REQUEST = Request(path="/ws", headers=Headers())
_HANDSHAKE_RESPONSE = Response(status_code=101, reason_phrase="Switching Protocols",
                               headers=Headers())


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class Connection:
    """A client connection and, once logged in, its session."""

    # Slots: thousands of idle connections each pay for an instance dict otherwise.
    __slots__ = (
        "_budget",
        "_busy",
        "_closed",
        "_closer",
        "_drain_cancelled",
        "_draining",
        "_frames",
        "_reading",
        "_requests",
        "_task",
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
        self._budget = settings.max_outbox_bytes
        self._frames = 0  # written since the transport's buffer was last empty
        self._closer: asyncio.Task[None] | None = None
        self._closed = False
        self._busy = False
        self._draining = False
        self._task: asyncio.Task[Any] | None = None
        self._drain_cancelled = False
        self._reading = False
        self._requests = RequestHandler(self, ws, self._send)

    # Lifecycle ------------------------------------------------------------------
    # An idle connection owns no task of its own: requests are read in the
    # handler task websockets gives us, and frames go straight to the
    # transport. That keeps an idle connection small.

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
            if self._closer is not None:
                await self.end_session()  # free the session now, not after the close handshake
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._closer), timeout=5)
        finally:
            if self._closer is not None:
                self._closer.cancel()
                await asyncio.gather(self._closer, return_exceptions=True)
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
                if ws_adapter.pending_bytes(self.ws) > self._budget:
                    if not await self._wait_for_drain():
                        return
                    continue  # draining may have begun meanwhile
                try:
                    frame = await self.ws.recv()
                except ConnectionClosed:
                    return
                self._busy = True
                try:
                    await self._requests.handle(frame)
                finally:
                    self._busy = False
        finally:
            self._reading = False

    async def _wait_for_drain(self) -> bool:
        """Backpressure: read no request until the client took its replies.

        True once what waits for the client is back within half the budget;
        False when the connection ended, or nothing drained for
        --write-timeout-s (then it is closed with 1008). Polled: only a
        client over its budget pays for it, nobody else.
        """
        ws, settings = self.ws, self.services.settings
        metrics.BACKPRESSURE.inc()
        loop = asyncio.get_running_loop()
        pending = ws_adapter.pending_bytes(ws)
        progress = loop.time()
        while pending > self._budget // 2:
            await asyncio.sleep(DRAIN_POLL_S)
            if self._closed or self._draining or not ws_adapter.is_open(ws):
                return not self._closed and ws_adapter.is_open(ws)
            now, left = loop.time(), ws_adapter.pending_bytes(ws)
            if left < pending:
                progress = now
            elif now - progress >= settings.write_timeout_s:
                metrics.SLOW_CONSUMERS.inc()
                log.warning("closing client that read nothing for %.0f s conn=%s user=%s "
                            "pending_bytes=%d", settings.write_timeout_s, self.conn_id,
                            self.username, left)
                self._send(_Close(CLOSE_POLICY, "write timeout"))
                return False
            pending = left
        return True

    def _send(self, frame: bytes | _Close, *, push: bool = False) -> None:
        """Hand `frame` to the transport, which buffers what the socket does not take.

        The buffer is the outbox: replies are bounded by backpressure on
        reading (see _read_loop); a push that does not fit the budget ends
        the connection (its message stays in the inbox until acked). One
        frame always fits an empty buffer, so no reply is too big.
        """
        if self._closed:
            return
        ws = self.ws
        if isinstance(frame, _Close):
            self._closed = True  # nothing may follow the close frame
            if ws_adapter.is_open(ws):
                self._closer = asyncio.create_task(ws.close(frame.code, frame.reason))
            return
        if not ws_adapter.is_open(ws):
            return
        pending = ws_adapter.pending_bytes(ws)
        if pending == 0:
            self._frames = 0
        elif push and (pending + len(frame) > self._budget
                       or self._frames >= self.services.settings.max_outbox_frames):
            self._cut_off(pending)
            return
        self._frames += 1
        if not ws_adapter.write_text(ws, frame):
            self._closed = True

    def _cut_off(self, pending: int) -> None:
        """A client that does not read loses its connection, not our memory."""
        self._closed = True
        metrics.SLOW_CONSUMERS.inc()
        log.warning("closing slow consumer conn=%s user=%s pending_bytes=%d",
                    self.conn_id, self.username, pending)
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
        self._send(protocol.message_event(message), push=True)

    def push(self, frame: bytes) -> None:
        """Push an already encoded message event (shared by a user's sessions)."""
        self._send(frame, push=True)

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
