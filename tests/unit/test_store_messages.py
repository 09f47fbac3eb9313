"""server/store.py against fakeredis: send, dedupe, inbox capacity, fetch, tails and ranges."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from server import keys
from server.store import DEDUPE_WINDOW_MS, Store
from server.wire import errors
from tests.unit.conftest import MAX_INBOX, MakeStore
from tests.unit.store_helpers import register, send

# Messages ---------------------------------------------------------------------------

async def test_send_stores_the_message_and_returns_ts_seq_and_prev(store: Store) -> None:
    await register(store, "bob")
    result = await store.send(sender="alice", to="bob", body="hello", msg_id="m1", now_ms=4242)
    assert result.ts == 4242
    assert result.prev == "0-0"
    messages, left = await store.fetch("bob", limit=10)
    assert messages == [{"msg_id": "m1", "from": "alice", "to": "bob", "body": "hello",
                         "ts": 4242, "seq": result.seq}]
    assert left == 0


async def test_prev_is_the_entry_before_the_new_one(store: Store) -> None:
    await register(store, "bob")
    first = await send(store, msg_id="m1")
    second = await store.send(sender="carol", to="bob", body="x", msg_id="m2", now_ms=1)
    assert second.prev == first


async def test_concurrent_sends_all_land_with_a_prev_chain(make_store: MakeStore) -> None:
    big = make_store(max_inbox=100)
    await register(big, "bob")
    results = await asyncio.gather(*(
        big.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(40)))
    messages, _ = await big.fetch("bob", limit=100)
    seqs = [m["seq"] for m in messages]
    assert len(seqs) == 40 == len(set(seqs))
    by_seq = {r.seq: r.prev for r in results}
    assert [by_seq[s] for s in seqs] == ["0-0", *seqs[:-1]]


async def test_resend_with_same_sender_and_msg_id_returns_the_first_ts_and_seq(
        store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="first", msg_id="m1", now_ms=100)
    retry = await store.send(sender="alice", to="bob", body="second", msg_id="m1", now_ms=200)
    assert (retry.ts, retry.seq, retry.prev) == (100, first.seq, None)
    messages, _ = await store.fetch("bob", limit=10)
    assert [(m["body"], m["ts"]) for m in messages] == [("first", 100)]


async def test_resend_after_ack_still_returns_the_first_send(store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=100)
    assert await store.ack("bob", first.seq) == 1
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=300)
    assert (retry.ts, retry.seq, retry.prev) == (100, first.seq, None)
    assert await store.unread("bob") == 0


async def test_different_senders_with_the_same_msg_id_store_two_messages(store: Store) -> None:
    await register(store, "bob")
    a = await store.send(sender="alice", to="bob", body="from a", msg_id="same", now_ms=1)
    c = await store.send(sender="carol", to="bob", body="from c", msg_id="same", now_ms=2)
    assert a.seq != c.seq
    messages, _ = await store.fetch("bob", limit=10)
    assert [(m["from"], m["body"]) for m in messages] == [("alice", "from a"), ("carol", "from c")]


async def test_same_msg_id_to_different_recipients_stores_one_each(store: Store) -> None:
    await register(store, "bob", "carol")
    await send(store, to="bob", msg_id="m1")
    await send(store, to="carol", msg_id="m1")
    assert (await store.unread("bob"), await store.unread("carol")) == (1, 1)


async def test_send_to_self_is_stored(store: Store) -> None:
    await register(store, "alice")
    await send(store, sender="alice", to="alice")
    assert await store.unread("alice") == 1


async def test_a_resend_within_the_window_is_answered_as_the_first_send(store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1000)
    retry = await store.send(sender="alice", to="bob", body="other", msg_id="m1", now_ms=2000)
    assert (retry.ts, retry.seq, retry.prev) == (1000, first.seq, None)
    assert await store.unread("bob") == 1


async def test_a_dedupe_record_expires_one_window_after_the_send(store: Store,
                                                                 redis: Redis) -> None:
    await register(store, "bob")
    await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1000)
    [ttl] = await redis.execute_command(  # type: ignore[no-untyped-call]
        "HPTTL", keys.dedupe("bob"), "FIELDS", 1, "alice:m1")
    assert DEDUPE_WINDOW_MS - 5000 < ttl <= DEDUPE_WINDOW_MS


async def test_send_to_unknown_user_raises_no_such_user(store: Store) -> None:
    with pytest.raises(errors.NoSuchUser):
        await send(store, to="ghost")
    assert await store.unread("ghost") == 0


async def test_full_inbox_gives_too_large(store: Store) -> None:
    await register(store, "bob")
    for i in range(MAX_INBOX):
        await send(store, msg_id=f"m{i}")
    with pytest.raises(errors.TooLarge):
        await send(store, msg_id="one-more")
    assert await store.unread("bob") == MAX_INBOX


async def test_retry_into_a_full_inbox_is_still_answered_as_the_first_send(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(MAX_INBOX)]
    retry = await store.send(sender="alice", to="bob", body="hi", msg_id="m0", now_ms=1)
    # The record holds the ts; the seq a retry's notification re-reads up to is the newest.
    assert (retry.seq, retry.prev) == (seqs[-1], None)


async def test_ack_makes_room_in_a_full_inbox(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(MAX_INBOX)]
    await store.ack("bob", seqs[0])
    await send(store, msg_id="one-more")
    assert await store.unread("bob") == MAX_INBOX


async def test_fetch_is_oldest_first_and_does_not_remove(store: Store) -> None:
    await register(store, "bob")
    for i in range(4):
        await send(store, f"body {i}", msg_id=f"m{i}", ts=i)
    page, left = await store.fetch("bob", limit=3)
    assert [m["body"] for m in page] == ["body 0", "body 1", "body 2"]
    assert left == 1
    again, _ = await store.fetch("bob", limit=10)
    assert [m["body"] for m in again] == ["body 0", "body 1", "body 2", "body 3"]
    assert await store.unread("bob") == 4


async def test_fetch_of_an_empty_inbox_is_empty(store: Store) -> None:
    assert await store.fetch("bob", limit=10) == ([], 0)


async def test_inbox_tails_give_the_newest_seq_or_zero(store: Store) -> None:
    await register(store, "bob", "carol")
    await send(store, msg_id="m1")
    newest = await send(store, msg_id="m2")
    assert await store.inbox_tails(["bob", "carol", "ghost"]) == {
        "bob": newest, "carol": "0-0", "ghost": "0-0"}


async def test_inbox_tails_of_no_names_is_empty(store: Store) -> None:
    assert await store.inbox_tails([]) == {}


async def test_read_range_gives_messages_after_a_seq_up_to_another(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, f"b{i}", msg_id=f"m{i}") for i in range(4)]
    assert [m["body"] for m in await store.read_range("bob", after="0-0")] == [
        "b0", "b1", "b2", "b3"]
    assert [m["seq"] for m in await store.read_range("bob", after=seqs[0])] == seqs[1:]
    assert [m["seq"] for m in await store.read_range("bob", after=seqs[0], upto=seqs[2])] == (
        seqs[1:3])
    assert [m["seq"] for m in await store.read_range("bob", after="0-0", count=2)] == seqs[:2]
    assert await store.read_range("bob", after=seqs[3]) == []


async def test_a_retry_after_later_sends_points_its_notification_at_the_newest_message(
        store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=100)
    later = await store.send(sender="alice", to="bob", body="y", msg_id="m2", now_ms=200)
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=300)
    assert (retry.ts, retry.seq, retry.prev) == (100, later.seq, None)
    assert later.prev == first.seq


async def test_prev_stays_the_last_stored_seq_after_acks_empty_the_inbox(store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=100)
    assert await store.ack("bob", first.seq) == 1
    second = await store.send(sender="alice", to="bob", body="y", msg_id="m2", now_ms=200)
    assert second.prev == first.seq
