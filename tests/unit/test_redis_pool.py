"""The Redis primary pool is bounded and blocking in both modes (issue #6).

The pools are the real ones server.redis_conn.connect builds; only their
connections are fakeredis ones, so nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.exceptions import ConnectionError

from server.__main__ import load_settings
from server.data.commit import GroupCommitter
from server.settings import MIN_REDIS_CONNECTIONS, Settings
from server.storage import redis_conn
from server.storage.redis_conn import PrimaryPool, RedisHandles
from server.store import Store
from server.wire import errors

CAP = MIN_REDIS_CONNECTIONS
URL = "redis://127.0.0.1:6399/0"
SENTINELS = "127.0.0.1:26391,127.0.0.1:26392,127.0.0.1:26393"


class FakePrimaryConnection(FakeAsyncRedisConnection):
    """Stands in for SentinelManagedConnection: takes the pool it belongs to."""

    def __init__(self, *, connection_pool: Any, **kwargs: Any) -> None:
        self.connection_pool = connection_pool
        super().__init__(**kwargs)


def fake_connections(pool: Any, server: fakeredis.FakeServer, cls: type[Any]) -> None:
    """Make `pool` open fakeredis connections to `server`."""
    pool.connection_class = cls
    pool.connection_kwargs["server"] = server
    # A fakeredis connection's health-check PING never gets its reply.
    pool.connection_kwargs["health_check_interval"] = 0


def settings_for(mode: str) -> Settings:
    if mode == "url":
        return Settings(redis_url=URL, redis_max_connections=CAP)
    return Settings(sentinel=SENTINELS, redis_max_connections=CAP)


@pytest.fixture(params=["url", "sentinel"])
async def handles(
    request: pytest.FixtureRequest, fake_server: fakeredis.FakeServer
) -> AsyncIterator[RedisHandles]:
    """connect()'s handles for one mode, their primary pool talking to fakeredis."""
    made = redis_conn.connect(settings_for(request.param))
    pool = pool_of(made)
    fake_connections(pool, fake_server, FakeAsyncRedisConnection if request.param == "url"
                     else FakePrimaryConnection)
    yield made
    await made.close()


def opened(pool: Any) -> int:
    return len(pool._available_connections) + len(pool._in_use_connections)


async def hold_all(pool: Any) -> list[AbstractConnection]:
    held = [await pool.get_connection() for _ in range(pool.max_connections)]
    assert opened(pool) == CAP
    return held


# The cap in both modes -------------------------------------------------------------


def test_url_mode_primary_pool_is_blocking_and_capped_by_the_setting() -> None:
    settings = Settings(redis_url=URL, redis_max_connections=24, ack_timeout_ms=1500)
    pool = pool_of(redis_conn.connect(settings))
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 24
    # Waits as long as one command may hold a connection (a WAIT + slack).
    assert pool.timeout == redis_conn.command_timeout_s(settings) == 3.5


def test_sentinel_mode_primary_pool_is_blocking_and_capped_by_the_setting() -> None:
    settings = Settings(sentinel=SENTINELS, redis_max_connections=24, ack_timeout_ms=1500)
    pool = pool_of(redis_conn.connect(settings))
    assert isinstance(pool, PrimaryPool)
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 24
    assert pool.timeout == 3.5


def test_default_cap_is_64_from_flag_or_environment() -> None:
    assert load_settings(["--redis-url", URL], {}).redis_max_connections == 64
    assert load_settings(["--redis-url", URL, "--redis-max-connections", "9"],
                         {"CHAT_REDIS_MAX_CONNECTIONS": "99"}).redis_max_connections == 9
    assert load_settings(["--redis-url", URL],
                         {"CHAT_REDIS_MAX_CONNECTIONS": "99"}).redis_max_connections == 99


@pytest.mark.parametrize("cap", ["7", "0", "-1"])
def test_cap_below_8_is_refused_with_one_line(
    cap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        load_settings(["--redis-url", URL, "--redis-max-connections", cap], {})
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m server: error: --redis-max-connections must be at least 8")


def test_cap_below_8_in_the_environment_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(["--redis-url", URL], {"CHAT_REDIS_MAX_CONNECTIONS": "4"})
    assert "--redis-max-connections must be at least 8" in capsys.readouterr().err


# Blocking behaviour ------------------------------------------------------------------


async def test_burst_of_commands_shares_the_capped_connections(handles: RedisHandles) -> None:
    pool = pool_of(handles)
    await asyncio.gather(*(handles.primary.incr("n") for _ in range(200)))
    assert await handles.primary.get("n") == "200"
    assert opened(pool) <= CAP


async def test_checkout_beyond_the_cap_waits_for_a_released_connection(
    handles: RedisHandles,
) -> None:
    pool = pool_of(handles)
    held = await hold_all(pool)
    async def set_k() -> Any:
        return await handles.primary.set("k", "v")

    waiting = asyncio.create_task(set_k())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # no "Too many connections", no extra connection
    assert opened(pool) == CAP
    await pool.release(held.pop())
    assert await asyncio.wait_for(waiting, 1.0) is True
    assert await handles.primary.get("k") == "v"  # the freed connection serves the rest
    assert opened(pool) == CAP
    for connection in held:
        await pool.release(connection)


async def test_checkout_beyond_the_cap_answers_unavailable_after_the_pool_timeout(
    handles: RedisHandles, fake_server: fakeredis.FakeServer,
) -> None:
    pool = pool_of(handles)
    assert isinstance(pool, BlockingConnectionPool)
    pool.timeout = 0.2  # the real one is ack_timeout_ms + 2 s
    committer = GroupCommitter(handles.primary, required_replicas=lambda: 0,
                               ack_timeout_ms=1000)
    committer.start()
    store = Store(handles.primary, committer, max_inbox=10)
    held = await hold_all(pool)
    try:
        started = time.monotonic()
        # A read and a durable write: both `unavailable` (retryable), never `internal`.
        with pytest.raises(errors.Unavailable) as read:
            await store.account("alice")
        assert isinstance(read.value.__cause__, ConnectionError)
        assert read.value.code == "unavailable"
        assert time.monotonic() - started >= 0.2
        with pytest.raises(errors.Unavailable):
            await store.register("alice", "h", gen="g1", now_ms=1)
    finally:
        for connection in held:
            await pool.release(connection)
        await committer.close()
    assert opened(pool) == CAP
    assert await handles.primary.ping() is True  # the pool works again once freed


# The old-primary check of PrimaryPool, now blocking ------------------------------------


async def test_failed_reconnect_to_the_new_primary_gives_the_slot_back(
    fake_server: fakeredis.FakeServer,
) -> None:
    made = redis_conn.connect(settings_for("sentinel"))
    pool = pool_of(made)
    assert isinstance(pool, PrimaryPool)
    fake_connections(pool, fake_server, FakePrimaryConnection)
    try:
        await made.primary.ping()  # one idle connection, "at" localhost:6379
        connection = pool._available_connections[0]
        assert connection.is_connected
        pool.master_address = ("10.0.0.9", 6379)  # the topology saw a failover
        fake_server.connected = False  # and the reconnect fails
        with pytest.raises(ConnectionError):
            await pool.get_connection()
        assert len(pool._in_use_connections) == 0  # not leaked: the cap is intact
        fake_server.connected = True
        held = await hold_all(pool)
        for connection in held:
            await pool.release(connection)
    finally:
        await made.close()


def pool_of(handles: RedisHandles) -> Any:
    """The primary's pool (one node's client: Sentinel or a URL, never a Cluster here)."""
    if not isinstance(handles.primary, Redis):
        raise TypeError("not one node's client")
    return handles.primary.connection_pool
