"""Fan-out on one instance: Redis pub/sub -> the local connections of a user.

Pub/sub is at-most-once, so the inbox stream is the truth. Every session
remembers the last seq pushed to it; a notification whose `prev` is not
newer than that is pushed directly, anything else (a gap, a retry's
notification, a reconnect of the listener, the periodic sweep) re-reads
the inbox after that seq. Pushes to one session are serialized per user,
so they always come in inbox order.

The listener is the hot path of a receiving instance: it reads every
notification one socket read brought in one go (server/storage/pubsub_reader.py),
splits a new-message notification without parsing the message
(server/wire/notifications.py) and takes a user's lock only when something
else holds it or a session has to re-read the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from server import keys, metrics
from server.data.sessions import Revoked
from server.delivery import revocation
from server.delivery.publisher import Publisher
from server.storage.pubsub_reader import PubSubReader
from server.storage.redis_conn import raise_if_cancelled
from server.store import Store
from server.wire import arguments, errors, notifications

log = logging.getLogger(__name__)

#: Longest wait for a pub/sub message before the listener re-checks whether
#: it must reconnect (a failover).
LISTEN_POLL_S = 0.25


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


class Delivery:
    def __init__(
        self, redis: Redis, store: Store, *, instance_id: str, sweep_interval_ms: int,
        push_grace_ms: int,
    ) -> None:
        self._redis = redis
        self._store = store
        self._control = keys.instance_channel(instance_id)
        self._sweep_interval = sweep_interval_ms / 1000
        self._grace_ms = push_grace_ms
        self._local: dict[str, set[Subscriber]] = defaultdict(set)
        self._users: dict[str, str] = {}  # channel -> user, for every user in _local
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pubsub: PubSub | None = None
        self._publisher = Publisher(store)
        self._tasks: list[asyncio.Task[None]] = []
        self.last_ping = 0.0  # monotonic time our own ping came back through pub/sub
        self._reconnect = False  # set by force_resync; the listener reconnects
        self._pushed = 0  # pushes not yet added to metrics.PUSHES (one inc per read)

    # Lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._publisher.start()
        self._tasks = [
            asyncio.create_task(self._listen(), name="pubsub-listener"),
            asyncio.create_task(self._sweep_forever(), name="inbox-sweep"),
        ]

    async def close(self) -> None:
        await self._publisher.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def listener_alive(self, max_age_s: float) -> bool:
        return self._pubsub is not None and time.monotonic() - self.last_ping < max_age_s

    async def ping(self) -> None:
        """Send ourselves a ping through Redis; the listener stamps its return."""
        await self._store.publish_raw(self._control, b'{"k":"ping"}')

    def force_resync(self) -> None:
        """After a failover the subscriber may sit on a dead or demoted node.

        The listener itself closes its connection and reconnects, resubscribes
        and resyncs: closing it from here, while the listener waits on it,
        hands the connection back to the pool with a read still pending, and
        the next command on it fails with "readuntil() called while another
        coroutine is already waiting".
        """
        self._reconnect = True

    # Sessions ----------------------------------------------------------------

    async def attach(self, name: str, sub: Subscriber) -> None:
        """Start pushing to `sub` what arrives for `name` after its inbox tail now."""
        first = not self._local[name]
        self._local[name].add(sub)
        self._users[keys.channel(name)] = name
        metrics.SESSIONS.inc()
        if first and self._pubsub is not None:
            try:
                await self._pubsub.subscribe(keys.channel(name))
            except (RedisError, OSError) as exc:
                # The listener fails on the same connection, reconnects and
                # subscribes every local user again; the sweep covers the gap.
                log.warning("subscribe for user=%s failed: %s", name, exc)
        # Subscribed first, tail second: nothing falls between the two.
        tails = await self._store.inbox_tails([name])
        sub.last_seq = tails[name]

    async def detach(self, name: str, sub: Subscriber) -> None:
        subs = self._local.get(name)
        if not subs or sub not in subs:
            return
        subs.discard(sub)
        metrics.SESSIONS.dec()
        if not subs:
            del self._local[name]
            self._users.pop(keys.channel(name), None)
            self._locks.pop(name, None)
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(keys.channel(name))
                except (RedisError, OSError) as exc:
                    # Harmless: notifications for users not here are ignored.
                    log.info("unsubscribe for user=%s failed: %s", name, exc)

    def notify_message(
        self, to: str, seq: str, message: dict[str, Any] | None, prev: str | None
    ) -> None:
        """Tell every instance about a durable message (batched, not awaited)."""
        self._publisher.post(to, notifications.message(seq, prev, message))

    async def notify_deleted(self, name: str, origin: str) -> None:
        await self._store.publish(name, notifications.deleted(origin))

    async def notify_ended(self, name: str, revoked: list[Revoked], origin: str) -> None:
        """Sessions of these tokens end on every instance (but the connection `origin`)."""
        await revocation.announce(self._store, name, revoked, origin=origin)

    # Listener -------------------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.05
        reconnect = False
        while True:
            raise_if_cancelled()
            reader = PubSubReader(self._redis)
            pubsub = reader.pubsub
            self._reconnect = False  # this connection is made after any failover seen so far
            try:
                await pubsub.subscribe(self._control, *(keys.channel(u) for u in self._local))
                self._pubsub = pubsub
                if reconnect:
                    log.info("pub/sub listener reconnected; resyncing %d users", len(self._local))
                    await self._catch_up_all()
                backoff = 0.05
                while not self._reconnect:
                    await self._dispatch_all(await reader.read(LISTEN_POLL_S))
                    raise_if_cancelled()
                log.info("pub/sub listener: primary changed; reconnecting")
            except (RedisError, OSError, errors.Unavailable) as exc:
                log.warning("pub/sub listener lost: %s: %s", type(exc).__name__, exc)
            except Exception:
                # A dead listener means silently lost pushes: log and go on.
                log.exception("pub/sub listener failed; reconnecting")
            finally:
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            metrics.PUBSUB_RECONNECTS.inc()
            reconnect = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _dispatch_all(self, batch: list[tuple[str, str]]) -> None:
        """Act on the notifications of one read, in order."""
        try:
            for channel, payload in batch:
                for data in notifications.unbatch(payload):
                    if self._reconnect:
                        return  # the listener reconnects; the resync re-reads the inboxes
                    pending = self._dispatch(channel, data)
                    if pending is not None:
                        self._count_pushes()
                        await pending
        finally:
            self._count_pushes()

    def _count_pushes(self) -> None:
        if self._pushed:
            metrics.PUSHES.inc(self._pushed)
            self._pushed = 0

    def _dispatch(self, channel: str, data: str) -> Coroutine[Any, Any, None] | None:
        """Act on one notification; what must wait for the inbox comes back to be awaited."""
        user = self._users.get(channel)
        if user is None:
            if channel == self._control:
                self.last_ping = time.monotonic()
            return None  # or a user who left: the unsubscribe is on its way
        new = notifications.parse_message(data)
        if new is not None:
            return self._on_message(user, *new)
        origin = notifications.deleted_origin(data)
        if origin is not None:
            for sub in list(self._local.get(user, ())):
                if sub.conn_id != origin:
                    sub.kick_deleted()
            return None
        ended = notifications.ended_sessions(data)
        if ended is not None:
            revocation.end_local(self._local.get(user, ()), *ended)
        return None

    def _on_message(
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
        for sub in list(self._local.get(user, ())):
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
            if len(messages) < 1000:
                return

    # Sweep ----------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            raise_if_cancelled()
            await asyncio.sleep(self._sweep_interval)
            try:
                await self._catch_up_all()
                # Sessions whose revocation note was lost, or whose token expired.
                await revocation.sweep(self._store, self._local)
            except (RedisError, OSError, errors.Unavailable) as exc:
                log.warning("inbox sweep failed: %s", exc)

    async def _catch_up_all(self) -> None:
        """Repair pushes lost by pub/sub; close sessions of deleted accounts.

        Only entries older than the grace period are pushed here: a newer one
        may still wait for its replica ack, and a push must be durable.
        """
        users = list(self._local)
        if not users:
            return
        tails = await self._store.inbox_tails(users)
        gens = await self._store.account_gens(users)
        settled = f"{int(time.time() * 1000) - self._grace_ms}"
        for user in users:
            for sub in list(self._local.get(user, ())):
                if gens.get(user) != sub.gen:
                    sub.kick_deleted()
                    continue
                if seq_key(tails[user]) > seq_key(sub.last_seq):
                    async with self._locks[user]:
                        await self._catch_up(user, sub, upto=settled, repair=True)
