"""server/store.py against fakeredis: cumulative ack and next_seq at the stream-id limits."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from server import keys
from server.data.messages import MAX_STREAM_INT, next_seq
from server.store import Store
from server.wire import errors
from tests.unit.store_helpers import BIG, register, send

# ack / next_seq ---------------------------------------------------------------------

async def test_ack_is_cumulative_and_returns_how_many_went(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(4)]
    assert await store.ack("bob", seqs[2]) == 3
    page, left = await store.fetch("bob", limit=10)
    assert [m["seq"] for m in page] == [seqs[3]]
    assert left == 0
    assert await store.ack("bob", seqs[2]) == 0
    assert await store.ack("bob", seqs[3]) == 1
    assert await store.unread("bob") == 0


async def test_ack_of_a_seq_older_than_the_inbox_removes_nothing(store: Store) -> None:
    await register(store, "bob")
    await send(store)
    assert await store.ack("bob", "0-0") == 0
    assert await store.ack("bob", "1-0") == 0
    assert await store.unread("bob") == 1


async def test_ack_of_a_seq_between_entries_removes_the_older_ones(store: Store,
                                                                  redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in ("5-1", "5-3", "7-0"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", "5-2") == 1
    assert [m["seq"] for m in (await store.fetch("bob", limit=10))[0]] == ["5-3", "7-0"]


async def test_ack_of_a_counter_at_the_stream_maximum_moves_to_the_next_ms(
        store: Store, redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in (f"5-{BIG}", "6-0"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", f"5-{BIG}") == 1
    assert [m["seq"] for m in (await store.fetch("bob", limit=10))[0]] == ["6-0"]


async def test_ack_of_the_largest_stream_id_empties_the_inbox(store: Store, redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in ("1-0", f"{BIG}-{BIG}"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", f"{BIG}-{BIG}") == 2
    assert await store.unread("bob") == 0


async def test_ack_of_a_malformed_seq_is_bad_request(store: Store) -> None:
    with pytest.raises(errors.BadRequest):
        await store.ack("bob", "not-a-seq")


@pytest.mark.parametrize("seq", [f"{MAX_STREAM_INT + 1}-0", f"0-{MAX_STREAM_INT + 1}",
                                 "99999999999999999999-99999999999999999999"])
async def test_ack_of_a_seq_beyond_the_largest_stream_id_is_bad_request(
    store: Store, seq: str
) -> None:
    # Twenty digits pass the shape check but no stream id is that large:
    # Redis rejects it, and that must not read as `unavailable` (retry).
    await register(store, "bob")
    await send(store)
    with pytest.raises(errors.BadRequest):
        await store.ack("bob", seq)
    assert await store.unread("bob") == 1


def test_next_seq_increments_the_counter() -> None:
    assert next_seq("0-0") == "0-1"
    assert next_seq("1700000000000-41") == "1700000000000-42"


def test_next_seq_after_the_largest_counter_is_the_next_millisecond() -> None:
    assert next_seq(f"5-{BIG}") == "6-0"
    assert next_seq(f"{MAX_STREAM_INT - 1}-{BIG}") == f"{BIG}-0"


def test_next_seq_after_the_largest_stream_id_is_none() -> None:
    assert next_seq(f"{BIG}-{BIG}") is None


def test_next_seq_of_a_malformed_seq_is_bad_request() -> None:
    with pytest.raises(errors.BadRequest):
        next_seq("5")
