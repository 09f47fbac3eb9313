"""fetch and list_users replies bounded in bytes, on fakeredis (store + ops, no server)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from redis.asyncio import Redis

from server.conn import ops
from server.data.commit import GroupCommitter
from server.store import Store
from server.wire import protocol


def now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def big_store(redis: Redis, committer: GroupCommitter) -> Store:
    return Store(redis, committer, max_inbox=1000, dedupe_layout="hsetex")


def conn_for(store: Store) -> Any:
    return SimpleNamespace(require_session=lambda: "bob", services=SimpleNamespace(store=store))


async def fill(store: Store, bodies: list[str]) -> None:
    assert await store.register("bob", "h", gen="g", now_ms=now())
    for i, body in enumerate(bodies):
        await store.send(sender="alice", to="bob", body=body, msg_id=f"m{i}", now_ms=now())


async def test_fetch_takes_only_what_fits_and_counts_the_rest_as_unread(
    big_store: Store
) -> None:
    await fill(big_store, ["\x01" * 1000] * 10)  # ~6,100 bytes of JSON each
    reply = await ops.fetch(conn_for(big_store), {"limit": 10, "room": 20_000})
    assert len(reply["messages"]) == 3
    assert reply["unread"] == 7
    assert len(protocol.ok(1, **reply)) <= 20_000 + 100


async def test_fetch_returns_one_message_even_when_it_alone_is_too_big(
    big_store: Store
) -> None:
    await fill(big_store, ["x" * 3000, "y"])
    reply = await ops.fetch(conn_for(big_store), {"limit": 10, "room": 100})
    assert [m["body"][0] for m in reply["messages"]] == ["x"]
    assert reply["unread"] == 1


async def test_quotes_and_backslashes_count_twice_plain_text_once(big_store: Store) -> None:
    await fill(big_store, ['"\\' * 500, "a" * 1000, "b" * 1000])
    messages, left = await big_store.fetch("bob", limit=10, room=2 * (1000 + 200))
    assert len(messages) == 1 and left == 2  # the escaped body took ~2,000 bytes
    messages, left = await big_store.fetch("bob", limit=10, room=3 * (2000 + 200))
    assert len(messages) == 3 and left == 0


async def test_list_users_pages_within_the_room_and_visits_every_name_once(
    big_store: Store
) -> None:
    names = sorted(f"user{i:03d}" + "x" * 20 for i in range(120))
    for name in names:
        assert await big_store.register(name, "h", gen="g", now_ms=now())
    seen: list[str] = []
    cursor = None
    while True:
        page = await ops.list_users(conn_for(big_store), {"pattern": "user*", "limit": 1000,
                                                         "cursor": cursor, "room": 500})
        assert sum(len(n) + 3 for n in page["users"]) <= 500
        seen += page["users"]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == names
