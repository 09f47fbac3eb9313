"""Fan-out on one instance: Redis pub/sub -> the local connections of a user.

Pub/sub is at-most-once, so the inbox stream is the truth: what a
notification cannot push in order, a reconnect of the listener, or the
periodic sweep, re-reads the inbox (server/delivery/pushes.py keeps the
local sessions and pushes to them in inbox order).

The listener is the hot path of a receiving instance: it reads every
notification one socket read brought in one go (server/storage/pubsub_reader.py),
splits a new-message notification without parsing the message
(server/wire/notifications.py) and hands it to the user's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from server import keys, metrics
from server.data.sessions import Revoked
from server.delivery import revocation
from server.delivery.publisher import Publisher
from server.delivery.pushes import LocalSessions, Subscriber
from server.storage.pubsub_reader import PubSubReader
from server.storage.redis_conn import raise_if_cancelled
from server.store import Store
from server.wire import errors, notifications

log = logging.getLogger(__name__)

#: Longest wait for a pub/sub message before the listener re-checks whether
#: it must reconnect (a failover).
LISTEN_POLL_S = 0.25


class Delivery:
    def __init__(
        self, redis: Redis, store: Store, *, instance_id: str, sweep_interval_ms: int,
        push_grace_ms: int,
    ) -> None:
        self._redis = redis
        self._store = store
        self._control = keys.instance_channel(instance_id)
        self._sweep_interval = sweep_interval_ms / 1000
        self._sessions = LocalSessions(store, push_grace_ms=push_grace_ms)
        self._local = self._sessions.by_user
        self._pubsub: PubSub | None = None
        self._publisher = Publisher(store)
        self._tasks: list[asyncio.Task[None]] = []
        self.last_ping = 0.0  # monotonic time our own ping came back through pub/sub
        self._reconnect = False  # set by force_resync; the listener reconnects

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
        if self._sessions.add(name, sub) and self._pubsub is not None:
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
        if self._sessions.remove(name, sub) and self._pubsub is not None:
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
                        self._sessions.count_pushes()
                        await pending
        finally:
            self._sessions.count_pushes()

    def _dispatch(self, channel: str, data: str) -> Coroutine[Any, Any, None] | None:
        """Act on one notification; what must wait for the inbox comes back to be awaited."""
        user = self._sessions.user_of(channel)
        if user is None:
            if channel == self._control:
                self.last_ping = time.monotonic()
            return None  # or a user who left: the unsubscribe is on its way
        new = notifications.parse_message(data)
        if new is not None:
            return self._sessions.on_message(user, *new)
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
        await self._sessions.catch_up_all()
