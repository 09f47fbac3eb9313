"""Sends to one recipient that arrive together run as one send.lua run, and the
inbox ledger lets an ack take what it removes off the counters: every
answer and counter as if each send and ack ran on its own."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from server import keys
from server.data.messages import SendResult, publish_args
from server.invariants import check
from server.store import Store
from server.wire import errors
from tests.unit.conftest import MakeStore
from tests.unit.store_helpers import register, send
from tests.unit.test_store_quotas import quota_store


async def together(store: Store, *sends: tuple[str, str], to: str = "bob"
                   ) -> list[SendResult | BaseException]:
    """(sender, msg_id) sends gathered, so the committer merges them into one call."""
    results: list[SendResult | BaseException] = await asyncio.gather(*(
        store.send(sender=sender, to=to, body=f"body of {msg_id}", msg_id=msg_id, now_ms=7)
        for sender, msg_id in sends), return_exceptions=True)
    return results


async def test_a_run_of_new_messages_stores_each_in_order_with_its_prev(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    results = await together(store, *(("alice", f"m{i}") for i in range(5)))
    seqs = [r.seq for r in results if isinstance(r, SendResult)]
    assert [r.prev for r in results if isinstance(r, SendResult)] == ["0-0", *seqs[:-1]]
    assert await redis.lrange(keys.ledger("bob"), 0, -1) == ["10 alice"] * 5
    assert await store.audit.inbox_counters("bob") == (5, 50, {"alice": 5})
    assert await check(store) == []


async def test_a_msg_id_twice_in_one_run_is_stored_once(store: Store) -> None:
    await register(store, "bob")
    first, other, retry = await together(store, ("alice", "m1"), ("alice", "m2"),
                                         ("alice", "m1"))
    assert isinstance(first, SendResult) and isinstance(retry, SendResult)
    assert isinstance(other, SendResult)
    assert (retry.ts, retry.prev, retry.seq) == (first.ts, None, other.seq)
    assert await store.unread("bob") == 2
    assert await check(store) == []


async def test_a_run_with_a_known_record_answers_it_as_a_retry_and_stores_the_rest(
        store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=3)
    retry, new = await together(store, ("alice", "m1"), ("alice", "m2"))
    assert isinstance(retry, SendResult) and isinstance(new, SendResult)
    assert (retry.ts, retry.prev) == (3, None)
    assert new.prev == first.seq
    assert await store.audit.inbox_counters("bob") == (2, 11, {"alice": 2})
    assert await check(store) == []


async def test_a_run_past_the_senders_share_stores_up_to_it(make_store: MakeStore) -> None:
    small = quota_store(make_store, max_pending_per_sender=2)
    await register(small, "bob")
    results = await together(small, ("alice", "a0"), ("alice", "a1"), ("alice", "a2"),
                             ("carol", "c0"))
    assert [type(r) for r in results] == [SendResult, SendResult, errors.TooLarge, SendResult]
    assert await small.audit.inbox_counters("bob") == (3, 30, {"alice": 2, "carol": 1})
    assert await check(small) == []


async def test_runs_to_two_recipients_in_one_call_keep_their_own_counters(
        store: Store) -> None:
    await register(store, "bob", "carol")
    await asyncio.gather(together(store, ("alice", "m1"), ("alice", "m2")),
                         together(store, ("alice", "m1"), to="carol"))
    assert await store.audit.inbox_counters("bob") == (2, 20, {"alice": 2})
    assert await store.audit.inbox_counters("carol") == (1, 10, {"alice": 1})
    assert await check(store) == []



async def test_sends_to_one_recipient_with_others_between_them_form_one_run_in_order(
        store: Store, redis: Redis) -> None:
    await register(store, "bob", "carol")
    results = await asyncio.gather(*(
        store.send(sender="alice", to=to, body=f"body of {i}", msg_id=f"m{i}", now_ms=7)
        for i, to in enumerate(["bob", "carol", "bob", "carol", "bob"])))
    bob = [r for r, to in zip(results, "bcbcb", strict=True) if to == "b"]
    carol = [r for r, to in zip(results, "bcbcb", strict=True) if to == "c"]
    assert [r.prev for r in bob] == ["0-0", bob[0].seq, bob[1].seq]
    assert [r.prev for r in carol] == ["0-0", carol[0].seq]
    fetched, _ = await store.fetch("bob", limit=10)
    assert [m["msg_id"] for m in fetched] == ["m0", "m2", "m4"]
    assert await redis.lrange(keys.ledger("bob"), 0, -1) == ["9 alice"] * 3
    assert await store.audit.inbox_counters("carol") == (2, 18, {"alice": 2})
    assert await check(store) == []

async def test_an_ack_takes_what_it_removes_off_the_counters_from_the_ledger(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    first = await send(store, "a", sender="alice", msg_id="a0")
    await send(store, "bbb", sender="carol", msg_id="c0")
    await send(store, "cc", sender="alice", msg_id="a1")
    assert await store.ack("bob", first) == 1
    assert await store.audit.inbox_counters("bob") == (2, 5, {"carol": 1, "alice": 1})
    assert await redis.lrange(keys.ledger("bob"), 0, -1) == ["3 carol", "2 alice"]
    assert await check(store) == []


async def test_counters_of_the_version_before_the_ledger_are_counted_again_once(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    # As 680621c left it: exact counters, no ledger, no field l.
    await redis.xadd(keys.inbox("bob"), {"msg_id": "o", "from": "dave", "to": "bob",
                                         "body": "zz", "ts": "1"})
    await redis.hset(keys.account("bob"), mapping={"n": 1, "b": 2, "p:dave": 1})
    assert await check(store) == []
    seq = await send(store, "xyz", sender="alice", msg_id="a0")
    assert await redis.lrange(keys.ledger("bob"), 0, -1) == ["2 dave", "3 alice"]
    assert await store.audit.inbox_counters("bob") == (2, 5, {"dave": 1, "alice": 1})
    assert await store.ack("bob", seq) == 2
    assert await store.audit.inbox_counters("bob") == (0, 0, {})
    assert await check(store) == []


async def test_an_entry_from_a_version_without_the_ledger_drops_the_counters_at_the_next_send(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    # A 680621c instance stores one: counters up, no ledger line.
    await redis.xadd(keys.inbox("bob"), {"msg_id": "o", "from": "dave", "to": "bob",
                                         "body": "zz", "ts": "1"})
    await redis.hset(keys.account("bob"), mapping={"n": 2, "b": 4, "p:dave": 1})
    await send(store, sender="alice", msg_id="a1")
    assert await store.audit.inbox_counters("bob") is None  # counted again by the next send
    await send(store, sender="alice", msg_id="a2")
    assert await store.audit.inbox_counters("bob") == (4, 8, {"alice": 3, "dave": 1})
    assert await check(store) == []


async def test_the_check_reports_a_ledger_that_does_not_match_the_inbox(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    await redis.lset(keys.ledger("bob"), 0, "3 mallory")
    problems = await check(store)
    assert len(problems) == 1 and "inbox ledger of 'bob'" in problems[0]


async def test_deleting_an_account_deletes_its_ledger(store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await send(store, sender="alice", msg_id="a0")
    assert await store.delete_account("bob", gen="g1")
    assert not await redis.exists(keys.ledger("bob"))


@pytest.mark.parametrize("order", [["bob", "carol", "bob"], ["bob", "bob", "carol"]])
def test_notifications_go_as_one_publish_per_user_in_order(order: list[str]) -> None:
    items = [(name, f'{{"k":"msg","seq":"{i}-0"}}'.encode()) for i, name in enumerate(order)]
    args = publish_args(items)
    channels = args[::2]
    assert channels == [keys.channel("bob"), keys.channel("carol")]
    bob_payload = args[1]
    assert isinstance(bob_payload, bytes)
    assert bob_payload.startswith(b'{"k":"msgs","n":[') and bob_payload.index(b'"0-0"') < \
        bob_payload.index(f'"{order.index("bob", 1)}-0"'.encode())
