"""Pushes to the sessions connected to this instance, always in inbox order.

Every session remembers the last seq pushed to it; a message whose `prev`
is not newer than that is pushed directly, anything else (a gap, a retry's
notification, the sweep) re-reads the inbox after that seq. Pushes to one
user's sessions are serialized by the user's lock, taken only when
something else holds it or a session has to re-read the inbox.
server/delivery/fanout.py feeds this from pub/sub and the periodic sweep.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any, Protocol

from server import keys, metrics
from server.store import Store
from server.wire import arguments

#: A read of the inbox returns at most this many entries (read_range's page).
READ_PAGE = 1000


class Subscriber(Protocol):
    """A logged-in connection as delivery sees it."""

    gen: str
    conn_id: str
    last_seq: str
    token_hash: str | None

    def deliver(self, message: dict[str, Any]) -> None: ...
    def push(self, frame: bytes) -> None: ...
    def kick_deleted(self) -> None: ...
    def end_by(self, reason: str, token_hash: str) -> None: ...


@functools.lru_cache(maxsize=4096)
def seq_key(seq: str) -> tuple[int, int]:
    """(ms, n) of a seq, for comparing; each seq is compared several times."""
    return arguments.parse_seq(seq) or (0, 0)


class LocalSessions:
    """The sessions of each user connected here, and the pushes to them."""

    def __init__(self, store: Store, *, push_grace_ms: int) -> None:
        self._store = store
        self._grace_ms = push_grace_ms
        self.by_user: dict[str, set[Subscriber]] = defaultdict(set)
        self._users: dict[str, str] = {}  # channel -> user, for every user in by_user
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pushed = 0  # pushes not yet added to metrics.PUSHES (one inc per read)

    def add(self, name: str, sub: Subscriber) -> bool:
        """Count `sub` in; True when it is the user's first session here."""
        first = not self.by_user[name]
        self.by_user[name].add(sub)
        self._users[keys.channel(name)] = name
        metrics.SESSIONS.inc()
        return first

    def remove(self, name: str, sub: Subscriber) -> bool:
        """Count `sub` out; True when it was the user's last session here."""
        subs = self.by_user.get(name)
        if not subs or sub not in subs:
            return False
        subs.discard(sub)
        metrics.SESSIONS.dec()
        if subs:
            return False
        del self.by_user[name]
        self._users.pop(keys.channel(name), None)
        self._locks.pop(name, None)
        return True

    def user_of(self, channel: str) -> str | None:
        """The local user whose channel this is, or None."""
        return self._users.get(channel)

    def count_pushes(self) -> None:
        if self._pushed:
            metrics.PUSHES.inc(self._pushed)
            self._pushed = 0

    def on_message(
        self, user: str, seq: str, prev: str | None, frame: bytes | None
    ) -> Coroutine[Any, Any, None] | None:
        """Push `frame` (the message `seq`, None for a retry's notification) to `user`.

        Without the user's lock when nothing holds it: no await comes
        between the check and the pushes, so no catch-up can interleave.
        A session that lacks something before `seq` re-reads the inbox,
        under the lock, in the coroutine returned.
        """
        lock = self._locks.get(user)
        if (lock is None or not lock.locked()) and not self._push_ready(user, seq, prev, frame):
            return None
        return self._push_or_catch_up(user, seq, prev, frame)

    def _push_ready(
        self, user: str, seq: str, prev: str | None, frame: bytes | None
    ) -> list[Subscriber]:
        """Push to the sessions of `user` that have all before `seq`; the ones behind."""
        behind = []
        for sub in list(self.by_user.get(user, ())):
            last = sub.last_seq
            # The common case needs no seq parsing: the session's last push
            # is `prev`, the inbox entry right before `seq` (send.lua).
            if frame is None or last != prev:
                last_key = seq_key(last)
                if seq_key(seq) <= last_key:
                    continue  # pushed already
                if frame is None or prev is None or seq_key(prev) > last_key:
                    behind.append(sub)  # a gap, or a retry's notification
                    continue
            sub.push(frame)
            sub.last_seq = seq
            self._pushed += 1
        return behind

    async def _push_or_catch_up(
        self, user: str, seq: str, prev: str | None, frame: bytes | None
    ) -> None:
        async with self._locks[user]:
            for sub in self._push_ready(user, seq, prev, frame):
                await self._catch_up(user, sub, upto=seq, repair=False)

    async def _catch_up(self, user: str, sub: Subscriber, *, upto: str, repair: bool) -> None:
        """Push what is in the inbox after sub.last_seq, up to `upto`."""
        while True:
            messages = await self._store.read_range(user, after=sub.last_seq, upto=upto)
            for message in messages:
                sub.deliver(message)
                sub.last_seq = message["seq"]
            metrics.PUSHES.inc(len(messages))
            if repair:
                metrics.PUSH_REPAIRS.inc(len(messages))
            if len(messages) < READ_PAGE:
                return

    async def catch_up_all(self) -> None:
        """Repair pushes lost by pub/sub; close sessions of deleted accounts.

        Only entries older than the grace period are pushed here: a newer one
        may still wait for its replica ack, and a push must be durable.
        """
        users = list(self.by_user)
        if not users:
            return
        tails = await self._store.inbox_tails(users)
        gens = await self._store.account_gens(users)
        settled = f"{int(time.time() * 1000) - self._grace_ms}"
        for user in users:
            for sub in list(self.by_user.get(user, ())):
                if gens.get(user) != sub.gen:
                    sub.kick_deleted()
                    continue
                if seq_key(tails[user]) > seq_key(sub.last_seq):
                    async with self._locks[user]:
                        await self._catch_up(user, sub, upto=settled, repair=True)
