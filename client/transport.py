"""One open WebSocket to one server instance: requests out, replies matched by id, events in.

The transport knows nothing about sessions or retries; `Link` (client/link.py) owns a
sequence of transports (one per connection) and decides what to do when one
ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from client.errors import ConnectionLost, RequestTimeout, error_from_reply

__all__ = ["EventHandler", "Transport"]

log = logging.getLogger(__name__)

EventHandler = Callable[["Transport", dict[str, Any]], None]

# A fetch reply may hold 1000 messages of 4096 characters (up to 4 UTF-8 bytes
# each), so the 1 MiB websockets default is too small for legal replies.
MAX_INCOMING_FRAME = 64 * 1024 * 1024


class Calls(Protocol):
    """The retrying request path (client/link.py) as the session and inbox parts see it."""

    async def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        retry_connection_loss: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]: ...


class Transport:
    """A connected WebSocket. Create with `await Transport.open(...)`."""

    def __init__(
        self,
        ws: ClientConnection,
        url: str,
        *,
        ids: Iterator[int],
        on_event: EventHandler,
        on_closed: Callable[[Transport], None],
    ) -> None:
        self.ws = ws
        self.url = url
        self._ids = ids
        self._on_event = on_event
        self._on_closed = on_closed
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._closed = asyncio.Event()
        self.close_reason = ""
        self.close_code: int | None = None
        # Set when the server announced a graceful stop (`shutdown` event).
        self.retry_after: float | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._reader = asyncio.create_task(self._read_loop(), name=f"chat-reader {url}")

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        open_timeout: float,
        on_event: EventHandler,
        on_closed: Callable[[Transport], None],
        ids: Iterator[int] | None = None,
    ) -> Transport:
        """Dial `url`; raises OSError / TimeoutError / websockets errors on failure."""
        kwargs: dict[str, Any] = {}
        if url.startswith("wss://") and ssl_context is not None:
            kwargs["ssl"] = ssl_context
        ws = await connect(
            url,
            open_timeout=open_timeout,
            close_timeout=2,
            # Keepalive pings notice a silently dead peer (host gone, cable cut);
            # a killed process is noticed at once through the TCP reset.
            ping_interval=10,
            ping_timeout=10,
            max_size=MAX_INCOMING_FRAME,
            **kwargs,
        )
        return cls(
            ws, url, ids=ids or itertools.count(1), on_event=on_event, on_closed=on_closed
        )

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def request(
        self, op: str, args: dict[str, Any], *, reply_timeout: float
    ) -> dict[str, Any]:
        """Send one request and return its successful reply; raise ChatError otherwise."""
        if self.closed:
            raise ConnectionLost(f"connection to {self.url} is closed ({self.close_reason})")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            frame = orjson.dumps({**args, "op": op, "id": request_id}).decode()
            try:
                await self.ws.send(frame)
            except ConnectionClosed as exc:
                self._mark_closed(f"send failed: {exc}")
                raise ConnectionLost(f"connection to {self.url} lost: {exc}") from exc
            try:
                async with asyncio.timeout(reply_timeout):
                    reply = await future
            except TimeoutError:
                # Replies come in request order, so a missing one means this
                # connection is stuck; drop it and let the client reconnect.
                self.abort(f"no reply to {op} within {reply_timeout:g}s")
                raise RequestTimeout(
                    f"no reply to {op} from {self.url} within {reply_timeout:g}s"
                ) from None
        finally:
            self._waiting.pop(request_id, None)
        if reply.get("ok") is True:
            return reply
        raise error_from_reply(reply)

    def abort(self, reason: str) -> None:
        """Drop the connection now (idempotent); waiting requests get ConnectionLost."""
        self._mark_closed(reason)
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    def close_soon(self, grace: float) -> None:
        """After `grace` seconds, abort if the server has not closed us yet."""
        if self._grace is None and not self.closed:
            loop = asyncio.get_running_loop()
            self._grace = loop.call_later(grace, self.abort, "server did not close after shutdown")

    async def close(self) -> None:
        self._mark_closed("closed by client")
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read_loop(self) -> None:
        try:
            async for raw in self.ws:
                self._dispatch(raw)
            self._mark_closed(f"closed by server (code {self.ws.close_code})")
        except ConnectionClosed as exc:
            self._mark_closed(f"connection lost: {exc}")
        except Exception as exc:
            # A bug in dispatch must not leave requests hanging forever.
            log.exception("reader for %s failed", self.url)
            self._mark_closed(f"reader failed: {exc!r}")
            self.abort("reader failed")
        finally:
            self.close_code = self.ws.close_code

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("ignoring non-JSON frame from %s: %.200r", self.url, raw)
            return
        if not isinstance(frame, dict):
            log.warning("ignoring non-object frame from %s: %.200r", self.url, raw)
            return
        if "event" in frame:
            self._on_event(self, frame)
            return
        request_id = frame.get("id")
        future = self._waiting.get(request_id) if isinstance(request_id, int) else None
        if future is None:
            # id null = the server could not parse one of our frames: a client bug.
            log.warning("unmatched reply from %s: %.300r", self.url, frame)
            return
        if not future.done():
            future.set_result(frame)

    def _mark_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        if self._grace is not None:
            self._grace.cancel()
        log.info("connection to %s ended: %s", self.url, reason)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"connection to {self.url} lost ({reason})"))
        self._on_closed(self)
