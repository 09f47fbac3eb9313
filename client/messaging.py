"""The inbox part of `ChatClient`: send, fetch, ack and the `messages()` stream.

`Messaging` owns the sends not acknowledged yet, the ordered stream of
incoming messages (client/inbox.py: backlog page by page, then pushes, a
refetch after every reconnect) with its (sender, msg_id) dedupe, and the
paging state. It implements the session part's `InboxHooks`; requests go
out through `Requests` (the link), and what it needs of the session
(`SessionView`) is passed to the calls that read it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol

from client.errors import ChatError, RetryableError, SessionEnded, Unauthenticated, Unconfirmed
from client.inbox import Inbox, PageEnd
from client.models import FetchResult, Message, SendResult
from client.transport import Calls

__all__ = ["RESEND_MARGIN_S", "Messaging", "Requests", "SessionView"]

log = logging.getLogger(__name__)

#: No resend starts later than this before the window ends: the window is
#: counted from the server's first receipt, after our first attempt left.
RESEND_MARGIN_S = 1.0


class Requests(Calls, Protocol):
    """The request path and task keeping the inbox part needs (client/link.py)."""

    @property
    def retry_deadline(self) -> float: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def check_usable(self) -> None: ...


class SessionView(Protocol):
    """What sends and the stream read of the session (client/session.py)."""

    @property
    def token(self) -> str | None: ...

    @property
    def end_reason(self) -> str | None: ...

    @property
    def dedupe_window_s(self) -> float: ...


class Messaging:
    """Message ops and the incoming message stream."""

    def __init__(self, requests: Requests, *, dedupe_size: int, page_size: int) -> None:
        self._requests = requests
        self._page_size = page_size
        self._inbox = Inbox(dedupe_size=dedupe_size)
        self._pending_sends: dict[str, tuple[str, str]] = {}
        self._last_yielded_seq: str | None = None
        self._last_acked_seq: str | None = None
        self._fetch_on_ack: int | None = None  # catch-up id waiting for an ack

    @property
    def pending_sends(self) -> int:
        return len(self._pending_sends)

    # --- ops --------------------------------------------------------------------------

    async def send(
        self, to: str, body: str, *, msg_id: str | None, deadline: float | None,
        session: SessionView,
    ) -> SendResult:
        msg_id = msg_id or uuid.uuid4().hex
        wanted = self._requests.retry_deadline if deadline is None else deadline
        window = max(0.0, session.dedupe_window_s - RESEND_MARGIN_S)
        self._pending_sends[msg_id] = (to, body)
        try:
            reply = await self._requests.call(
                "send", {"to": to, "body": body, "msg_id": msg_id}, deadline=min(wanted, window)
            )
        except RetryableError as exc:
            if window >= wanted:
                raise
            raise Unconfirmed(
                f"message {msg_id} to {to} was not confirmed within the server's dedupe window "
                f"({session.dedupe_window_s:g} s), so it is not sent again: it may or may not "
                f"have been delivered (last error: {exc})") from exc
        finally:
            self._pending_sends.pop(msg_id, None)
        return SendResult(str(reply.get("msg_id", msg_id)), int(reply["ts"]))

    async def fetch(self, limit: int) -> FetchResult:
        reply = await self._requests.call("fetch", {"limit": limit})
        messages = [Message.from_wire(m) for m in reply.get("messages") or []]
        return FetchResult(messages, int(reply.get("unread", 0)))

    async def ack(self, message: Message | str) -> int:
        seq = message.seq if isinstance(message, Message) else message
        reply = await self._requests.call("ack", {"seq": seq})
        self._last_acked_seq = seq
        if self._fetch_on_ack is not None:
            catch_up, self._fetch_on_ack = self._fetch_on_ack, None
            self._requests.spawn(self._fetch_page(catch_up))
        return int(reply.get("removed", 0))

    async def stream(self, *, auto_ack: bool, session: SessionView) -> AsyncIterator[Message]:
        """`ChatClient.messages()`: see its docstring."""
        if self._inbox.streaming:
            raise RuntimeError("messages() is already being iterated")
        self._requests.check_usable()
        if session.token is None and session.end_reason is not None:
            raise SessionEnded.because(session.end_reason)  # ended before we began
        self._inbox.reset()
        self._inbox.streaming = True
        if session.token is not None:
            self._requests.spawn(self._fetch_page(self._inbox.begin_catch_up()))
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
            self._requests.spawn(self._fetch_page(catch_up))
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

    # --- what the session and the link tell us (InboxHooks and events) ----------------

    def begin_catch_up(self) -> int | None:
        return self._inbox.begin_catch_up() if self._inbox.streaming else None

    def resumed(self, catch_up: int) -> None:
        self._requests.spawn(self._fetch_page(catch_up))

    def session_started(self, catch_up: int | None) -> None:
        if not self._inbox.streaming:
            return
        if catch_up is None or not self._inbox.is_current(catch_up):
            # Switching user reset the stream (and its held pushes): start over;
            # the fetch returns whatever was pushed meanwhile.
            catch_up = self._inbox.begin_catch_up()
        self._requests.spawn(self._fetch_page(catch_up))

    def user_changed(self) -> None:
        self._inbox.reset()

    def session_ended(self, reason: str) -> None:
        self._inbox.fail(SessionEnded.because(reason))

    def pushed(self, message: Message) -> None:
        """A `message` event arrived."""
        self._inbox.add_push(message)

    def fail(self, error: ChatError) -> None:
        """The client ended for good: the stream raises `error`."""
        self._inbox.fail(error)

    def end(self) -> None:
        """The client was closed: the stream ends."""
        self._inbox.end()
