"""Fan-out on one instance: Redis pub/sub -> the local connections of a user.

Pub/sub is at-most-once, so the inbox stream is the truth. Every session
remembers the last seq pushed to it; a notification whose `prev` is not
newer than that is pushed directly, anything else (a gap, a retry's
notification, a reconnect of the listener, the periodic sweep) re-reads
the inbox after that seq. Pushes to one session are serialized per user,
so they always come in inbox order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from server import errors, keys, metrics, protocol
from server.publisher import Publisher
from server.store import Store

log = logging.getLogger(__name__)

#: Longest wait for a pub/sub message before the listener re-checks whether
#: it must reconnect (a failover).
LISTEN_POLL_S = 0.25


class Subscriber(Protocol):
    """A logged-in connection as delivery sees it."""

    gen: str
    conn_id: str
    last_seq: str

    def deliver(self, message: dict[str, Any]) -> None: ...
    def push(self, frame: bytes) -> None: ...
    def kick_deleted(self) -> None: ...


@functools.lru_cache(maxsize=4096)
def seq_key(seq: str) -> tuple[int, int]:
    """(ms, n) of a seq, for comparing; each seq is compared several times."""
    return protocol.parse_seq(seq) or (0, 0)


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
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
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
        first = not self._local[name]
        self._local[name].add(sub)
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
        payload = {"k": "msg", "seq": seq, "prev": prev, "m": message}
        self._publisher.post(to, orjson.dumps(payload))

    async def notify_deleted(self, name: str, origin: str) -> None:
        await self._store.publish(name, orjson.dumps({"k": "del", "origin": origin}))

    # Listener -------------------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.05
        reconnect = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            self._reconnect = False  # this connection is made after any failover seen so far
            try:
                await pubsub.subscribe(self._control, *(keys.channel(u) for u in self._local))
                self._pubsub = pubsub
                if reconnect:
                    log.info("pub/sub listener reconnected; resyncing %d users", len(self._local))
                    await self._catch_up_all()
                backoff = 0.05
                while not self._reconnect:
                    msg = await pubsub.get_message(timeout=LISTEN_POLL_S)
                    if msg is not None:
                        await self._dispatch(msg)
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

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        channel = msg["channel"]
        if channel == self._control:
            self.last_ping = time.monotonic()
            return
        user = keys.user_of_channel(channel)
        if user is None or user not in self._local:
            return
        data = orjson.loads(msg["data"])
        if data.get("k") == "del":
            for sub in list(self._local.get(user, ())):
                if sub.conn_id != data.get("origin"):
                    sub.kick_deleted()
            return
        if data.get("k") == "msg":
            await self._on_message(user, data["seq"], data.get("prev"), data.get("m"))

    async def _on_message(
        self, user: str, seq: str, prev: str | None, message: dict[str, Any] | None
    ) -> None:
        key = seq_key(seq)
        prev_key = seq_key(prev) if message is not None and prev is not None else None
        frame = None  # encoded once for every session of the user
        async with self._locks[user]:
            for sub in list(self._local.get(user, ())):
                last = seq_key(sub.last_seq)
                if key <= last:
                    continue
                if message is not None and prev_key is not None and prev_key <= last:
                    if frame is None:
                        frame = protocol.message_event(message)
                    sub.push(frame)
                    sub.last_seq = seq
                    metrics.PUSHES.inc()
                else:
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
            await asyncio.sleep(self._sweep_interval)
            try:
                await self._catch_up_all()
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
