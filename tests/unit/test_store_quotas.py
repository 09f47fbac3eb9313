"""Inbox quotas in the store: per sender, in bytes, counters exact through ack and delete."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from server import keys
from server.data.commit import GroupCommitter
from server.data.dedupe import MAX_CLOCK_SKEW_MS
from server.invariants import check
from server.store import Store
from server.wire import errors
from tests.unit.conftest import MakeStore
from tests.unit.store_helpers import register, send


def quota_store(make_store: MakeStore, *, max_pending_per_sender: int = 100,
                max_inbox_bytes: int = 10**6) -> Store:
    return make_store(max_inbox=100, max_pending_per_sender=max_pending_per_sender,
                      max_inbox_bytes=max_inbox_bytes)


async def test_a_sender_past_its_share_gets_too_large_while_another_gets_through(
        make_store: MakeStore) -> None:
    small = quota_store(make_store, max_pending_per_sender=3)
    await register(small, "bob")
    for i in range(3):
        await send(small, sender="alice", msg_id=f"a{i}")
    with pytest.raises(errors.TooLarge, match="from you"):
        await send(small, sender="alice", msg_id="a3")
    await send(small, sender="carol", msg_id="c0")
    assert await small.unread("bob") == 4


async def test_an_ack_frees_the_senders_share(make_store: MakeStore) -> None:
    small = quota_store(make_store, max_pending_per_sender=2)
    await register(small, "bob")
    first = await send(small, sender="alice", msg_id="a0")
    await send(small, sender="alice", msg_id="a1")
    await small.ack("bob", first)
    await send(small, sender="alice", msg_id="a2")
    assert await small.audit.inbox_counters("bob") == (2, 4, {"alice": 2})


async def test_body_bytes_count_utf8_and_stop_at_the_bound(make_store: MakeStore) -> None:
    small = quota_store(make_store, max_inbox_bytes=10)
    await register(small, "bob")
    await send(small, "héllo", msg_id="m0")  # 6 bytes
    with pytest.raises(errors.TooLarge, match="bytes"):
        await send(small, "12345", msg_id="m1")  # 11 > 10
    await send(small, "1234", msg_id="m2")  # exactly 10
    assert (await small.audit.inbox_counters("bob") or (0, 0))[1] == 10


async def test_a_resend_past_the_quota_is_still_answered_as_the_first_send(
        make_store: MakeStore) -> None:
    small = quota_store(make_store, max_pending_per_sender=1)
    await register(small, "bob")
    seq = await send(small, msg_id="m0")
    assert await send(small, msg_id="m0") == seq


async def test_acking_everything_clears_the_counters(store: Store) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    last = await send(store, sender="carol", msg_id="c0")
    await store.ack("bob", last)
    assert await store.audit.inbox_counters("bob") == (0, 0, {})
    assert await check(store) == []


async def test_an_inbox_stored_before_quotas_is_counted_at_its_next_send(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await redis.xadd(keys.inbox("bob"), {"msg_id": "old", "from": "carol", "to": "bob",
                                         "body": "abc", "ts": "1"})
    assert await store.audit.inbox_counters("bob") is None
    await send(store, "hi", sender="alice", msg_id="new")
    assert await store.audit.inbox_counters("bob") == (2, 5, {"carol": 1, "alice": 1})


async def test_counters_that_drifted_are_dropped_by_an_ack_and_recounted(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    # An entry written by a server without counters (a rolling upgrade).
    old = await redis.xadd(keys.inbox("bob"), {"msg_id": "o", "from": "dave", "to": "bob",
                                               "body": "zz", "ts": "1"})
    await send(store, sender="alice", msg_id="a1")
    await store.ack("bob", str(old))
    assert await store.audit.inbox_counters("bob") is None
    await send(store, sender="alice", msg_id="a2")
    assert await store.audit.inbox_counters("bob") == (2, 4, {"alice": 2})


async def test_delete_account_removes_the_counters_with_the_inbox(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    assert await store.delete_account("bob", gen="g1")
    await register(store, "bob", gen="g2")
    assert await store.audit.inbox_counters("bob") is None
    await send(store, sender="alice", msg_id="a0")  # a new account: not a dup
    assert await store.audit.inbox_counters("bob") == (1, 2, {"alice": 1})
    assert await check(store) == []


@pytest.mark.parametrize("layout", ["hpexpire", "generations"])
async def test_each_layout_recognises_a_resend_and_expires_its_record(
        redis: Redis, committer: GroupCommitter, layout: str) -> None:
    store = Store(redis, committer, max_inbox=10, dedupe_layout=layout,
                  dedupe_window_ms=60_000)
    await register(store, "bob")
    first = await send(store, msg_id="m0", ts=1_000_000)
    assert await send(store, msg_id="m0", ts=1_059_000) == first
    if layout == "generations":
        # ts 1,000,000 is generation 16 of 60 s; the key lives to the end of 17,
        # plus the clock skew instances may have.
        key = keys.dedupe_generation("bob", 16)
        assert 0 < await redis.pttl(key) <= 1_080_000 - 1_000_000 + MAX_CLOCK_SKEW_MS
    else:
        [ttl] = await redis.execute_command(  # type: ignore[no-untyped-call]
            "HPTTL", keys.dedupe("bob"), "FIELDS", 1, "alice:m0")
        assert 55_000 < ttl <= 60_000
    assert await check(store) == []


async def test_a_legacy_record_is_read_while_the_legacy_window_is_open(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await redis.hset(keys.seen("bob"), "alice:m0", "5 5-0")
    await redis.zadd(keys.seen_expiry("bob"), {"alice:m0": 10**13})
    assert await store.dedupe.adopt_older_records(now_ms=0) == 2
    assert 0 < await redis.pttl(keys.seen("bob")) <= store.dedupe.window_ms
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m0", now_ms=1)
    assert (retry.ts, retry.seq) == (5, "0-0")  # ts from the record; nothing stored since
    assert await store.unread("bob") == 0


async def test_generation_hashes_found_at_start_are_read_and_none_found_costs_nothing(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    assert await store.dedupe.adopt_older_records(now_ms=0) == 0
    assert store.dedupe.older_until_ms == {}  # nothing more looked in per send
    await redis.hset(keys.dedupe_generation("bob", 0), "alice:m0", "5")
    assert await store.dedupe.adopt_older_records(now_ms=0) == 1
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m0", now_ms=1)
    assert retry.ts == 5
    assert await store.unread("bob") == 0
