"""Fixtures shared by the unit tests: a Store over fakeredis, no server, no sockets.

fakeredis has no WAIT, so the group committer waits for no replica here;
durability is tested on real nodes (tests/integration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

import fakeredis
import pytest
from fakeredis.aioredis import FakeRedis
from redis.asyncio import Redis

from server.data.commit import GroupCommitter
from server.store import Store

#: Inbox capacity of the `store` fixture: small, so tests can fill it.
MAX_INBOX = 5

#: The `make_store` fixture: Store's keyword arguments -> a Store.
MakeStore = Callable[..., Store]


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """The fake Redis itself (set `.connected = False` to simulate an outage)."""
    return fakeredis.FakeServer()


@pytest.fixture
async def redis(fake_server: fakeredis.FakeServer) -> AsyncIterator[Redis]:
    client: Redis = FakeRedis(server=fake_server, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def committer(redis: Redis) -> AsyncIterator[GroupCommitter]:
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    yield committer
    await committer.close()


@pytest.fixture
def store(redis: Redis, committer: GroupCommitter) -> Store:
    # fakeredis has HSETEX; the other layouts have tests of their own.
    return Store(redis, committer, max_inbox=MAX_INBOX, dedupe_layout="hsetex")


@pytest.fixture
def make_store(redis: Redis, committer: GroupCommitter) -> MakeStore:
    """Builds a Store with other bounds (Store's keyword arguments) over the
    `store` fixture's Redis and committer."""
    return partial(Store, redis, committer, dedupe_layout="hsetex")
