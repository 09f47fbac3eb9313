"""Requests of one connection: parse, rate-limit, run the op, build the reply.

A connection's requests run one at a time, so replies come in request
order, with one exception: sends a client pipelined (already received
when the first is read) run together as one ordered group, so such a
client does not pay a whole durable write per send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from server import metrics
from server.conn import ops, ws_adapter
from server.data.commit import OrderedGroup
from server.wire import arguments, errors, protocol

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from server.conn.session import Session

log = logging.getLogger(__name__)

#: Most sends of one connection run together (see RequestHandler._handle_sends).
MAX_SEND_GROUP = 32
#: `unavailable` answers are logged at most once per this many seconds (with
#: how many were not): during an outage every client retries, and a line per
#: answer took a quarter of the instance's CPU, which the topology poll that
#: ends the outage needs. The chat_ops_total counter still counts each one.
UNAVAILABLE_LOG_EVERY_S = 1.0


class QuietLog:
    """Lets one line per interval through and counts the ones it held back."""

    __slots__ = ("_every", "_next", "held")

    def __init__(self, every_s: float) -> None:
        self._every, self._next, self.held = every_s, 0.0, 0

    def allow(self, now: float) -> int | None:
        """None: hold this line back; else how many were held back before it."""
        if now < self._next:
            self.held += 1
            return None
        held, self.held, self._next = self.held, 0, now + self._every
        return held


_UNAVAILABLE_LINES = QuietLog(UNAVAILABLE_LOG_EVERY_S)


class RequestHandler:
    """The requests of one connection; the connection owns one and hands it frames."""

    __slots__ = ("_limits", "_refilled", "_send", "_session", "_tokens", "_ws")

    def __init__(self, session: Session, ws: ServerConnection,
                 send: Callable[[bytes], None]) -> None:
        settings = session.services.settings
        self._session, self._ws, self._send = session, ws, send
        self._limits = arguments.limits(
            max_body_chars=settings.max_body_chars, max_list_limit=settings.max_list_limit,
            max_reply_bytes=settings.max_reply_bytes,
        )
        # The request budget (token bucket).
        self._tokens: float = float(settings.request_burst)
        self._refilled: float = time.monotonic()

    def _rate_ok(self) -> bool:
        settings = self._session.services.settings
        now = time.monotonic()
        refill = (now - self._refilled) * settings.requests_per_second
        self._tokens = min(settings.request_burst, self._tokens + refill)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def handle(self, frame: str | bytes) -> None:
        """Answer one frame (and the sends pipelined right after it)."""
        started = time.perf_counter()
        await self._answer(self._parse(frame), started)

    async def _answer(self, parsed: protocol.Request | bytes, started: float) -> None:
        """Reply to one parsed frame (or send its ready error reply)."""
        if isinstance(parsed, bytes):
            self._send(parsed)
        elif parsed.op == "send" and self._frame_waiting():
            await self._handle_sends(parsed, started)
        else:
            self._send(await self._execute(parsed, started))

    def _frame_waiting(self) -> bool:
        """A frame is already received (see server/conn/ws_adapter.py)."""
        return ws_adapter.frame_waiting(self._ws)

    async def _handle_sends(self, first: protocol.Request, started: float) -> None:
        """`first` and the sends received right after it, run together.

        A client that pipelines sends would otherwise wait a whole durable
        write per send. The group enters the group commit as one run that is
        never split across batches, so its sends land in request order;
        the next group starts after this one is durable, so groups of one
        connection never overtake each other. Replies go in request order.
        """
        group = [(first, started)]
        after: tuple[protocol.Request | bytes, float] | None = None
        while len(group) < MAX_SEND_GROUP and self._frame_waiting():
            try:
                frame = await self._ws.recv()  # already received: returns at once
            except ConnectionClosed:
                break
            parsed = self._parse(frame)
            if isinstance(parsed, bytes) or parsed.op != "send":
                after = (parsed, time.perf_counter())  # answered after the group
                break
            group.append((parsed, time.perf_counter()))
        ordered = OrderedGroup()
        tasks = [asyncio.ensure_future(self._execute(request, t, ordered))
                 for request, t in group]
        for reply in await asyncio.gather(*tasks):
            self._send(reply)
        if after is not None:
            await self._answer(*after)  # not a send: never a group of its own

    def _parse(self, frame: str | bytes) -> protocol.Request | bytes:
        """The request in `frame`, or the error reply that answers it."""
        try:
            return protocol.parse_frame(frame, binary=isinstance(frame, bytes),
                                        limits=self._limits,
                                        authenticated=self._session.username is not None)
        except protocol.Rejected as rejected:
            # Rejected frames spend the request budget too: a flood of
            # garbage or of ops without a session is throttled like any other.
            error = rejected.error
            if not self._rate_ok():
                error = errors.RateLimited("too many requests; slow down")
            metrics.op_counter("invalid", error.code).inc()
            return protocol.error(rejected.request_id, error)

    async def _execute(self, request: protocol.Request, started: float,
                       group: OrderedGroup | None = None) -> bytes:
        """Run one request (`group`: a send of a pipelined group); its reply frame."""
        op, session = request.op, self._session
        try:
            if not self._rate_ok():
                raise errors.RateLimited("too many requests; slow down")
            if group is not None:
                result = await ops.send(session, request.args, group=group)
            else:
                result = await ops.OPS[op](session, request.args)
            reply = protocol.ok(request.id, **result)
            code = "ok"
        except errors.ChatError as exc:
            reply, code = protocol.error(request.id, exc), exc.code
        except Exception:
            log.exception("op %s failed conn=%s user=%s", op, session.conn_id, session.username)
            reply, code = protocol.error(request.id, errors.Internal("internal error")), "internal"
        elapsed = time.perf_counter() - started
        metrics.op_counter(op, code).inc()
        if op == "send" and code == "ok":
            metrics.SEND_SECONDS.observe(elapsed)
        level = logging.DEBUG if code == "ok" else logging.INFO
        held = 0
        if code == "unavailable":
            allowed = _UNAVAILABLE_LINES.allow(time.monotonic())
            level, held = (logging.DEBUG, 0) if allowed is None else (level, allowed)
        if log.isEnabledFor(level):  # the hot path skips building the record
            log.log(
                level, "op=%s user=%s conn=%s addr=%s result=%s ms=%.1f%s",
                op, session.username, session.conn_id, session.address, code, elapsed * 1000,
                f" (and {held} more unavailable not logged)" if held else "",
                extra={"op": op, "user": session.username, "conn": session.conn_id,
                       "addr": session.address, "result": code,
                       "latency_ms": round(elapsed * 1000, 1), "not_logged": held},
            )
        return reply

