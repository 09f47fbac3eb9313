"""Ordering of incoming messages for `ChatClient.messages()` (no I/O here).

Acks are cumulative, so the application must see messages in inbox order:
acking a live push while older messages still wait in the inbox would delete
those unseen. So whenever a session starts (login, resume after a
reconnect) the stream first "catches up": it fetches the inbox page by page
and holds live pushes aside meanwhile; when a fetch reports nothing left
beyond its page, the held pushes follow (duplicates of fetched ones are
dropped later by the (sender, msg_id) dedupe), and later pushes flow straight
through.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from client.dedupe import SeenSet
from client.models import Message

__all__ = ["Inbox", "PageEnd"]


@dataclass(frozen=True, slots=True)
class PageEnd:
    """Marks the end of a fetched page after which the inbox holds more messages."""

    catch_up_id: int


class Inbox:
    """A queue of messages and page markers, filled by fetches and pushes."""

    def __init__(self, *, dedupe_size: int = 100_000) -> None:
        self.seen = SeenSet(dedupe_size)
        self.streaming = False  # True while an application iterates messages()
        self._items: deque[Message | PageEnd] = deque()
        self._changed = asyncio.Event()
        self._catch_up_id = 0
        self._catching_up = False
        self._stash: list[Message] = []
        self._error: BaseException | None = None
        self._ended = False

    @property
    def catching_up(self) -> bool:
        return self._catching_up

    def begin_catch_up(self) -> int:
        """Start holding pushes aside until a fetch empties the inbox; returns its id.

        A newer catch-up (another reconnect) makes the pages of older ones stale.
        """
        self._catch_up_id += 1
        self._catching_up = True
        self._stash.clear()
        return self._catch_up_id

    def is_current(self, catch_up_id: int) -> bool:
        return self._catching_up and catch_up_id == self._catch_up_id

    def add_page(self, catch_up_id: int, messages: list[Message], unread: int) -> bool:
        """Queue a fetched page; returns False if the page is stale and was ignored."""
        if not self.is_current(catch_up_id):
            return False
        self._items.extend(messages)
        if unread > 0:
            # More after this page: the next fetch must wait until this page is
            # acked, or it would return the same messages again.
            self._items.append(PageEnd(catch_up_id))
        else:
            self._items.extend(self._stash)
            self._stash.clear()
            self._catching_up = False
        self._changed.set()
        return True

    def add_push(self, message: Message) -> None:
        if not self.streaming:
            # Nobody is reading: the message stays in the server inbox and the
            # catch-up of the next messages() call fetches it.
            return
        if self._catching_up:
            self._stash.append(message)
        else:
            self._items.append(message)
            self._changed.set()

    def fail(self, error: BaseException) -> None:
        """End the stream with `error` (account deleted, token rejected)."""
        self._error = error
        self._changed.set()

    def end(self) -> None:
        """End the stream cleanly (client closed)."""
        self._ended = True
        self._changed.set()

    def reset(self) -> None:
        """Forget queued items (a new messages() iteration or a new user)."""
        self._items.clear()
        self._stash.clear()
        self._catching_up = False
        self._error = None

    async def get(self) -> Message | PageEnd | None:
        """The next item in order; None when the stream ended; raises the fatal error."""
        while True:
            if self._error is not None:
                raise self._error
            if self._ended:
                return None
            if self._items:
                return self._items.popleft()
            self._changed.clear()
            await self._changed.wait()
