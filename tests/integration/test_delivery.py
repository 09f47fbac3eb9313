"""Delivery in this process over a real Redis/Valkey: the pub/sub listener as the server runs it.

The Redis client is the server's own (server.redis_conn.connect), the
sessions are stand-ins that record what they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pytest
import redis
from redis.asyncio import Redis

from server import keys, metrics
from server.data.commit import GroupCommitter
from server.delivery.fanout import LISTEN_POLL_S, Delivery
from server.settings import Settings
from server.storage.channels import PrimaryChannels
from server.storage.pubsub_reader import PubSubReader
from server.storage.redis_conn import RedisHandles, connect
from server.store import Store
from server.wire import notifications


class Session:
    def __init__(self, conn_id: str = "c1") -> None:
        self.gen, self.conn_id, self.last_seq = "g1", conn_id, "0-0"
        self.token_hash: str | None = None  # no token: the session sweep leaves it alone
        self.pushed: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.kicked = False
        self.arrived = asyncio.Event()

    def deliver(self, message: dict[str, Any]) -> None:
        self.delivered.append(message)
        self.arrived.set()

    def push(self, frame: bytes) -> None:
        event = orjson.loads(frame)
        assert event["event"] == "message"
        self.pushed.append(event["message"])
        self.arrived.set()

    def kick_deleted(self) -> None:
        self.kicked = True
        self.arrived.set()

    def end_by(self, reason: str, token_hash: str) -> None:
        raise AssertionError(f"no token to end ({reason})")


@dataclass
class Env:
    handles: RedisHandles
    store: Store
    delivery: Delivery

    async def send(self, to: str, body: str, *, notify: bool = True) -> str:
        """Store a message for `to` as the send op does; notify unless told not to."""
        msg_id = f"m-{time.monotonic_ns()}"
        result = await self.store.send(sender="alice", to=to, body=body, msg_id=msg_id,
                                       now_ms=1)
        assert result.prev is not None, result
        message = {"msg_id": msg_id, "from": "alice", "to": to, "body": body, "ts": 1,
                   "seq": result.seq}
        if notify:
            self.delivery.notify_message(to, result.seq, message, result.prev)
        return result.seq

    async def register(self, *names: str) -> None:
        for name in names:
            assert await self.store.register(name, "pw-hash", gen="g1", now_ms=1)


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    handles = connect(Settings(redis_url=redis_url))
    committer = GroupCommitter(handles.primary, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    store = Store(handles.primary, committer, max_inbox=100_000, max_pending_per_sender=100_000)
    delivery = Delivery(PrimaryChannels(cast(Redis, handles.primary)), store, instance_id="t",
                        sweep_interval_ms=3_600_000, push_grace_ms=0)
    delivery.start()
    await wait_until(lambda: delivery.listening)
    try:
        yield Env(handles, store, delivery)
    finally:
        await delivery.close()
        await committer.close()
        await handles.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll `condition()` until true; how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def reconnects() -> float:
    return metrics.REGISTRY.get_sample_value("chat_pubsub_reconnects_total") or 0.0


def subscribers(redis_url: str, name: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.pubsub_numsub(keys.channel(name))[0][1])
    finally:
        client.close()


async def test_burst_arriving_in_one_read_is_pushed_whole_and_in_order(
    env: Env, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    read = PubSubReader.read

    async def counting_read(self: PubSubReader, timeout: float) -> list[tuple[str, str]]:
        batch = await read(self, timeout)
        # A publish carries a batch of one user's notifications: count them all.
        sizes.append(sum(len(notifications.unbatch(data)) for _, data in batch))
        return batch

    monkeypatch.setattr(PubSubReader, "read", counting_read)
    await env.register("bob")
    bob = Session()
    await env.delivery.attach("bob", bob)
    seqs = [await env.send("bob", f"body {i}", notify=False) for i in range(2000)]
    prev = "0-0"
    for i, seq in enumerate(seqs):  # one burst: the publisher sends them in a few calls
        message = {"msg_id": f"m{i}", "from": "alice", "to": "bob", "body": f"body {i}",
                   "ts": 1, "seq": seq}
        env.delivery.notify_message("bob", seq, message, prev)
        prev = seq
    await wait_until(lambda: len(bob.pushed) == len(seqs))
    assert [m["seq"] for m in bob.pushed] == seqs
    assert [m["body"] for m in bob.pushed] == [f"body {i}" for i in range(2000)]
    assert bob.delivered == []  # every one pushed directly, no inbox re-read
    assert max(sizes) > 100, sizes  # many notifications per socket read


async def test_subscribe_while_the_listener_waits_in_a_read_then_unsubscribe(
    env: Env, redis_url: str,
) -> None:
    await env.register("carol")
    await asyncio.sleep(LISTEN_POLL_S / 2)  # the listener sits in its read: nothing comes
    carol = Session()
    await env.delivery.attach("carol", carol)
    seq = await env.send("carol", "hello")
    await asyncio.wait_for(carol.arrived.wait(), 5)
    assert [m["seq"] for m in carol.pushed] == [seq]
    assert subscribers(redis_url, "carol") == 1
    await env.delivery.detach("carol", carol)
    pubsub = env.delivery._feeds[0].reader.pubsub
    # The confirmation is read by the listener: redis-py forgets the channel.
    await wait_until(lambda: keys.channel("carol") not in pubsub.channels)
    assert subscribers(redis_url, "carol") == 0


@pytest.mark.parametrize("traffic", [False, True], ids=["idle", "notifications-flowing"])
async def test_force_resync_reconnects_within_the_poll_interval(env: Env, traffic: bool) -> None:
    flowing = True

    async def ping_forever() -> None:
        while flowing:
            await env.delivery.ping()
            await asyncio.sleep(0.001)

    pinger = asyncio.create_task(ping_forever()) if traffic else None
    await asyncio.sleep(0.1)
    before = reconnects()
    env.delivery.force_resync()
    took = await wait_until(lambda: reconnects() > before)
    flowing = False
    if pinger is not None:
        await pinger
    assert took < LISTEN_POLL_S + 0.25
    await wait_until(lambda: env.delivery.listening)


async def test_ping_through_pubsub_stamps_last_ping(env: Env) -> None:
    assert not env.delivery.listener_alive(60)
    await env.delivery.ping()
    await wait_until(lambda: env.delivery.listener_alive(1.0))


async def test_deletion_kicks_every_other_session_of_the_user(env: Env) -> None:
    await env.register("dave")
    origin, other = Session("c-origin"), Session("c-other")
    await env.delivery.attach("dave", origin)
    await env.delivery.attach("dave", other)
    await env.delivery.notify_deleted("dave", origin="c-origin")
    await asyncio.wait_for(other.arrived.wait(), 5)
    assert other.kicked and not origin.kicked


async def test_gap_in_notifications_is_filled_from_the_inbox_in_order(env: Env) -> None:
    await env.register("erin")
    erin = Session()
    await env.delivery.attach("erin", erin)
    lost = await env.send("erin", "one", notify=False)
    second = await env.send("erin", "two")
    await wait_until(lambda: len(erin.delivered) == 2)
    assert [m["seq"] for m in erin.delivered] == [lost, second]
    third = await env.send("erin", "three")
    await wait_until(lambda: len(erin.pushed) == 1)
    assert [m["seq"] for m in erin.pushed] == [third]


async def test_killed_pubsub_connection_reconnects_and_pushes_what_it_missed(
    env: Env, redis_url: str,
) -> None:
    await env.register("frank")
    frank = Session()
    await env.delivery.attach("frank", frank)
    missed = await env.send("frank", "published into the void", notify=False)
    before = reconnects()
    admin = redis.Redis.from_url(redis_url)
    try:
        assert admin.client_kill_filter(_type="pubsub") >= 1
    finally:
        admin.close()
    await wait_until(lambda: reconnects() > before)
    await wait_until(lambda: [m["seq"] for m in frank.delivered] == [missed])
    await wait_until(lambda: env.delivery.listening)
    after = await env.send("frank", "after the reconnect")
    await wait_until(lambda: [m["seq"] for m in frank.pushed] == [after])


async def test_close_cancels_the_listener_blocked_in_a_read(env: Env) -> None:
    listener = env.delivery._tasks[0]
    started = time.monotonic()
    await env.delivery.close()
    assert listener.cancelled()
    assert time.monotonic() - started < 1.0


async def test_close_ends_the_listener_even_when_a_callee_swallowed_the_cancel(
    env: Env, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def swallowing_read(self: PubSubReader, timeout: float) -> list[tuple[str, str]]:
        # What asyncio.wait_for (Python 3.11) inside a redis-py write does
        # when the cancel arrives just as the write completes.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(timeout)
        return []

    monkeypatch.setattr(PubSubReader, "read", swallowing_read)
    await asyncio.sleep(LISTEN_POLL_S * 2)  # the listener now reads through swallowing_read
    listener = env.delivery._tasks[0]
    closing = asyncio.ensure_future(env.delivery.close())
    done, _ = await asyncio.wait([closing], timeout=2)
    if not done:  # let the fixture stop it: real reads again, cancel until it ends
        monkeypatch.undo()
        while not listener.done():
            listener.cancel()
            await asyncio.wait([listener], timeout=LISTEN_POLL_S * 2)
        await closing
    assert done, "close() hung: the listener went on after its cancel was swallowed"
    assert listener.cancelled()
