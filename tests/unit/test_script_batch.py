"""The group commit merges neighbouring sends into one script call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from server import keys
from server.data import commit
from server.store import Store
from server.wire import errors
from tests.unit.conftest import MakeStore
from tests.unit.store_helpers import register


@pytest.fixture
def evalshas(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many KEYS each EVALSHA sent to Redis had, in order."""
    seen: list[int] = []
    original = Pipeline.evalsha

    def spy(self: Pipeline, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        seen.append(numkeys)
        return original(self, sha, numkeys, *keys_and_args)

    monkeypatch.setattr(Pipeline, "evalsha", spy)
    return seen


async def test_concurrent_sends_go_to_redis_as_one_script_call(
        store: Store, evalshas: list[int]) -> None:
    await register(store, "bob")
    await store.load_scripts()
    evalshas.clear()
    await asyncio.gather(*(
        store.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(3)))
    assert evalshas == [12]  # 3 sends x 4 keys (account, inbox, ledger, dedupe)


async def test_a_register_between_sends_splits_the_merged_call(
        store: Store, evalshas: list[int]) -> None:
    await register(store, "bob")
    await store.load_scripts()
    evalshas.clear()
    await asyncio.gather(
        store.send(sender="alice", to="bob", body="a", msg_id="m1", now_ms=1),
        store.register("carol", "hash", gen="g", now_ms=1),
        store.send(sender="alice", to="bob", body="b", msg_id="m2", now_ms=2),
        store.send(sender="alice", to="bob", body="c", msg_id="m3", now_ms=3),
    )
    assert evalshas == [4, 2, 8]  # 4 keys per send, 2 per register


async def test_merged_sends_land_in_call_order_with_a_prev_chain(store: Store) -> None:
    await register(store, "bob")
    first, second, third = await asyncio.gather(*(
        store.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(3)))
    messages, _ = await store.fetch("bob", limit=10)
    assert [m["body"] for m in messages] == ["0", "1", "2"]
    assert (first.prev, second.prev, third.prev) == ("0-0", first.seq, second.seq)


async def test_a_retry_in_the_same_merged_call_is_answered_as_the_first_send(
        store: Store) -> None:
    await register(store, "bob")
    first, retry = await asyncio.gather(*(
        store.send(sender="alice", to="bob", body="x", msg_id="same", now_ms=5)
        for _ in range(2)))
    assert (retry.seq, retry.ts, retry.prev) == (first.seq, 5, None)
    assert await store.unread("bob") == 1


async def test_each_merged_send_gets_its_own_outcome(make_store: MakeStore) -> None:
    small = make_store(max_inbox=1)
    await register(small, "bob", "carol")
    await small.send(sender="alice", to="carol", body="fills", msg_id="m0", now_ms=1)
    ok, unknown, full = await asyncio.gather(
        small.send(sender="alice", to="bob", body="a", msg_id="m1", now_ms=2),
        small.send(sender="alice", to="nobody", body="b", msg_id="m2", now_ms=3),
        small.send(sender="alice", to="carol", body="c", msg_id="m3", now_ms=4),
        return_exceptions=True)
    assert not isinstance(ok, BaseException) and ok.prev == "0-0"
    assert isinstance(unknown, errors.NoSuchUser)
    assert isinstance(full, errors.TooLarge)


async def test_merged_sends_survive_a_flushed_script_cache(store: Store, redis: Redis) -> None:
    await register(store, "bob")
    await redis.script_flush()
    results = await asyncio.gather(*(
        store.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(4)))
    assert len({r.seq for r in results}) == 4
    assert await store.unread("bob") == 4


async def test_concurrent_acks_go_to_redis_as_one_script_call(
        store: Store, evalshas: list[int]) -> None:
    await register(store, "bob", "carol")
    bob = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1)
    carol = await store.send(sender="alice", to="carol", body="x", msg_id="m1", now_ms=1)
    await store.load_scripts()
    evalshas.clear()
    removed = await asyncio.gather(store.ack("bob", bob.seq), store.ack("carol", carol.seq))
    assert list(removed) == [1, 1]
    assert evalshas == [6]  # 2 acks x (inbox, account, ledger)


async def test_a_failing_ack_is_internal_and_the_acks_merged_with_it_go_on(
        store: Store, redis: Redis) -> None:
    await register(store, "bob")
    seq = (await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1)).seq
    await redis.set(keys.inbox("carol"), "not a stream")
    bad, good = await asyncio.gather(store.ack("carol", seq), store.ack("bob", seq),
                                     return_exceptions=True)
    assert isinstance(bad, errors.Internal)
    assert good == 1


async def test_an_ordered_group_is_never_split_across_batches(
        make_store: MakeStore, evalshas: list[int]) -> None:
    big = make_store(max_inbox=1000)
    await register(big, "bob")
    await big.load_scripts()
    evalshas.clear()
    group = commit.OrderedGroup()
    await asyncio.gather(*(
        big.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i, group=group)
        for i in range(commit.MAX_BATCH + 44)))
    assert evalshas == [4 * (commit.MAX_BATCH + 44)]


async def test_writes_outside_a_group_are_cut_at_the_batch_limit(
        make_store: MakeStore, evalshas: list[int]) -> None:
    big = make_store(max_inbox=1000)
    await register(big, "bob")
    await big.load_scripts()
    evalshas.clear()
    await asyncio.gather(*(
        big.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(commit.MAX_BATCH + 44)))
    assert evalshas == [4 * commit.MAX_BATCH, 4 * 44]


async def test_a_merged_call_answering_the_wrong_number_of_replies_fails_each_call(
        committer: commit.GroupCommitter, redis: Redis) -> None:
    broken = redis.register_script("return {'only one'}")
    await redis.script_load(broken.script)
    outcomes = await asyncio.gather(*(
        committer.run(broken, [f"k{i}"], [], merge=True) for i in range(2)),
        return_exceptions=True)
    assert all(isinstance(outcome, errors.Internal) for outcome in outcomes)
