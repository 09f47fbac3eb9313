"""server/store.py against fakeredis: committer and Redis failures; pub/sub and health."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest
from redis.asyncio import Redis

from server import keys
from server.data.commit import GroupCommitter
from server.store import Store
from server.wire import errors
from tests.unit.conftest import MAX_INBOX
from tests.unit.store_helpers import register, send

# Failures -----------------------------------------------------------------------------

async def test_required_replicas_unavailable_makes_run_raise_unavailable(redis: Redis) -> None:
    def no_topology() -> int:
        raise errors.Unavailable("no primary known")

    committer = GroupCommitter(redis, required_replicas=no_topology, ack_timeout_ms=1000)
    committer.start()
    try:
        store = Store(redis, committer, max_inbox=MAX_INBOX, dedupe_layout="hsetex")
        with pytest.raises(errors.Unavailable, match="no primary known"):
            await store.register("alice", "h", gen="g1", now_ms=1)
        assert await store.account("alice") is None
    finally:
        await committer.close()


async def test_committer_that_is_not_started_is_unavailable(redis: Redis) -> None:
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    store = Store(redis, committer, max_inbox=MAX_INBOX, dedupe_layout="hsetex")
    with pytest.raises(errors.Unavailable):
        await store.register("alice", "h", gen="g1", now_ms=1)


async def test_committer_close_is_idempotent_and_later_writes_are_unavailable(
        redis: Redis) -> None:
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    await committer.close()
    await committer.close()
    with pytest.raises(errors.Unavailable):
        store = Store(redis, committer, max_inbox=1, dedupe_layout="hsetex")
        await store.register("a", "h", gen="g", now_ms=1)


async def test_unreachable_redis_is_unavailable(store: Store,
                                                fake_server: fakeredis.FakeServer) -> None:
    await register(store, "bob")
    fake_server.connected = False
    with pytest.raises(errors.Unavailable):
        await store.unread("bob")
    with pytest.raises(errors.Unavailable):
        await send(store)
    with pytest.raises(errors.Unavailable):
        await store.fetch("bob", limit=1)
    fake_server.connected = True
    assert await store.unread("bob") == 0


async def test_a_failing_script_is_internal_and_other_writes_go_on(store: Store,
                                                                   redis: Redis) -> None:
    await register(store, "bob", "carol")
    await redis.delete(keys.inbox("bob"))
    await redis.set(keys.inbox("bob"), "not a stream")
    bad, good = await asyncio.gather(send(store, to="bob"), send(store, to="carol"),
                                     return_exceptions=True)
    assert isinstance(bad, errors.Internal)
    assert isinstance(good, str)
    assert await store.unread("carol") == 1


# Pub/sub and health -------------------------------------------------------------------

async def test_publish_reaches_subscribers_of_the_users_channel(store: Store,
                                                                redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.channel("bob"), keys.instance_channel("i1"))
    try:
        await store.publish("bob", b'{"event": "x"}')
        await store.publish_raw(keys.instance_channel("i1"), b"ping")
        got: list[tuple[str, str]] = []
        for _ in range(50):
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is not None:
                got.append((msg["channel"], msg["data"]))
            if len(got) == 2:
                break
        assert got == [(keys.channel("bob"), '{"event": "x"}'),
                       (keys.instance_channel("i1"), "ping")]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_ping_succeeds_when_reachable_and_is_unavailable_when_not(
        store: Store, fake_server: fakeredis.FakeServer) -> None:
    await store.ping()
    fake_server.connected = False
    with pytest.raises(errors.Unavailable):
        await store.ping()
