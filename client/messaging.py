"""Message ops of `ChatClient`: send, fetch, ack and the `messages()` stream.

`messages()` yields the inbox backlog page by page, then live pushes, and
fetches the inbox again after every reconnect (client/inbox.py holds the
ordering and the dedupe).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from client.core import RESEND_MARGIN_S, ClientCore
from client.errors import ChatError, RetryableError, SessionEnded, Unauthenticated, Unconfirmed
from client.inbox import PageEnd
from client.models import FetchResult, Message, SendResult

__all__ = ["MessageOps"]

log = logging.getLogger(__name__)


class MessageOps(ClientCore):
    """The message half of the public API."""

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
        msg_id = msg_id or uuid.uuid4().hex
        wanted = self.retry_deadline if deadline is None else deadline
        window = max(0.0, self.dedupe_window_s - RESEND_MARGIN_S)
        self._pending_sends[msg_id] = (to, body)
        try:
            reply = await self._call(
                "send", {"to": to, "body": body, "msg_id": msg_id}, deadline=min(wanted, window)
            )
        except RetryableError as exc:
            if window >= wanted:
                raise
            raise Unconfirmed(
                f"message {msg_id} to {to} was not confirmed within the server's dedupe window "
                f"({self.dedupe_window_s:g} s), so it is not sent again: it may or may not "
                f"have been delivered (last error: {exc})") from exc
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
        handled it. Ends when the client is closed; raises AccountDeleted,
        BadToken or SessionEnded when the session ends.
        """
        if self._inbox.streaming:
            raise RuntimeError("messages() is already being iterated")
        self._check_usable()
        if self._token is None and self.session_end_reason is not None:
            raise SessionEnded.because(self.session_end_reason)  # ended before we began
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
