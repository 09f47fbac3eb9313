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

from redis.exceptions import RedisError

from server import keys, metrics
from server.data.sessions import Revoked
from server.delivery import revocation
from server.delivery.publisher import Publisher
from server.delivery.pushes import LocalSessions, Subscriber
from server.storage.channels import Channels, Feed
from server.storage.failures import raise_if_cancelled
from server.store import Store
from server.wire import errors, notifications

log = logging.getLogger(__name__)

#: Longest wait for a pub/sub message before the listener re-checks whether
#: it must reconnect (a failover).
LISTEN_POLL_S = 0.25


class Delivery:
    def __init__(
        self, channels: Channels, store: Store, *, instance_id: str, sweep_interval_ms: int,
        push_grace_ms: int,
    ) -> None:
        """`channels`: where the pub/sub connections go (one primary, or each Cluster shard)."""
        self._channels = channels
        self._store = store
        self._instance = instance_id
        self._sweep_interval = sweep_interval_ms / 1000
        self._sessions = LocalSessions(store, push_grace_ms=push_grace_ms)
        self._local = self._sessions.by_user
        #: The pub/sub connections while the listener is subscribed (else empty).
        self._feeds: list[Feed] = []
        self._publisher = Publisher(store)
        self._tasks: list[asyncio.Task[None]] = []
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

    @property
    def last_ping(self) -> float:
        """Monotonic time our own ping last came back on EVERY feed (0: not on all yet)."""
        return min((feed.last_ping for feed in self._feeds), default=0.0)

    @property
    def listening(self) -> bool:
        """Subscribed on every feed (not between a loss and the resubscribe)."""
        return bool(self._feeds)

    def listener_alive(self, max_age_s: float) -> bool:
        return bool(self._feeds) and time.monotonic() - self.last_ping < max_age_s

    async def ping(self) -> None:
        """Send ourselves a ping through each feed; the listener stamps its return."""
        for feed in list(self._feeds):
            await self._store.publish_raw(feed.ping, b'{"k":"ping"}')

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
        if self._sessions.add(name, sub) and self._feeds:
            feed = self._channels.feed_of(self._feeds, keys.channel(name))
            try:
                if feed is None:  # the slot moved since the feeds were opened
                    self.force_resync()
                else:
                    await feed.subscribe(keys.channel(name))
            except (RedisError, OSError) as exc:
                # The listener fails on the same connection, reconnects and
                # subscribes every local user again; the sweep covers the gap.
                log.warning("subscribe for user=%s failed: %s", name, exc)
        # Subscribed first, tail second: nothing falls between the two.
        tails = await self._store.inbox_tails([name])
        sub.last_seq = tails[name]

    async def detach(self, name: str, sub: Subscriber) -> None:
        if self._sessions.remove(name, sub) and self._feeds:
            feed = self._channels.feed_of(self._feeds, keys.channel(name))
            try:
                if feed is not None:  # else the feeds are being rebuilt without it
                    await feed.unsubscribe(keys.channel(name))
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
            feeds = self._channels.open(self._instance)
            self._reconnect = False  # these connections are made after any change seen so far
            try:
                await self._subscribe_all(feeds)
                self._feeds = feeds
                if reconnect:
                    log.info("pub/sub listener reconnected on %d connection(s); resyncing %d "
                             "users", len(feeds), len(self._local))
                    await self._catch_up_all()
                backoff = 0.05
                await self._read_all(feeds)
                log.info("pub/sub listener: topology changed; reconnecting")
            except (RedisError, OSError, errors.Unavailable) as exc:
                log.warning("pub/sub listener lost: %s: %s", type(exc).__name__, exc)
            except Exception:
                # A dead listener means silently lost pushes: log and go on.
                log.exception("pub/sub listener failed; reconnecting")
            finally:
                self._feeds = []
                for feed in feeds:
                    with contextlib.suppress(RedisError, OSError):
                        await feed.reader.pubsub.aclose()  # type: ignore[no-untyped-call]
            metrics.PUBSUB_RECONNECTS.inc()
            reconnect = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _subscribe_all(self, feeds: list[Feed]) -> None:
        """Each feed's ping channel and the channels of the local users it carries."""
        if not feeds:
            raise errors.Unavailable("no Redis primary known to listen on yet")
        channels: dict[str, list[str]] = {feed.name: [feed.ping] for feed in feeds}
        for user in self._local:
            feed = self._channels.feed_of(feeds, keys.channel(user))
            if feed is None:
                raise errors.Unavailable(f"no pub/sub connection carries user={user}'s channel")
            channels[feed.name].append(keys.channel(user))
        for feed in feeds:
            await feed.subscribe(*channels[feed.name])

    async def _read_all(self, feeds: list[Feed]) -> None:
        """Read every feed until a reconnect is due; the first failure ends them all."""
        tasks = [asyncio.create_task(self._read(feed), name=f"pubsub-{feed.name}")
                 for feed in feeds]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the failure
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, feed: Feed) -> None:
        while not self._reconnect:
            await self._dispatch_all(await feed.reader.read(LISTEN_POLL_S), feed)
            raise_if_cancelled()

    async def _dispatch_all(self, batch: list[tuple[str, str]], feed: Feed | None = None
                            ) -> None:
        """Act on the notifications of one read (of `feed`), in order."""
        try:
            for channel, payload in batch:
                if feed is not None and channel == feed.ping:
                    feed.last_ping = time.monotonic()
                    continue
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
            return None  # a user who left: the unsubscribe is on its way
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
