"""Fixtures that own real processes: start on free ports, yield, always stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.cluster_fixture import (  # noqa: F401 (fixtures, found by name)
    fresh_redis_cluster,
    make_redis_cluster,
    redis_cluster,
)
from tests.procs import RedisNode, ServerProc, free_port
from tests.wsclient import OPEN_PEERS

StartServer = Callable[..., ServerProc]


@pytest.fixture(scope="session")
def redis_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisNode]:
    """One real Redis/Valkey with AOF on, shared by a test session."""
    node = RedisNode(datadir=tmp_path_factory.mktemp("redis"), port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture
def redis_url(redis_node: RedisNode) -> str:
    """The shared Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_node.url)
    client.flushall()
    client.close()
    return redis_node.url


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start `python -m server` processes; each is stopped at teardown.

    start_server(*extra_args, redis_url=..., env={...}) -> ServerProc
    The test's raw peers (tests.wsclient) are closed first, while the
    test's event loop still runs, so servers need not wait for them.
    """
    started: list[ServerProc] = []

    def start(*extra: str, redis_url: str | None = None, env: dict[str, str] | None = None,
              name: str | None = None) -> ServerProc:
        args = ["--host", "127.0.0.1", "--port", "0"]
        if redis_url:
            args += ["--redis-url", redis_url]
        name = name or f"server-{len(started)}"
        args += ["--instance-id", name, *extra]
        proc = ServerProc(args=args, logdir=tmp_path, name=name, env=env or {})
        started.append(proc)
        return proc.start()

    yield start
    while OPEN_PEERS:
        await OPEN_PEERS.pop().close()
    for proc in started:
        proc.stop()


@pytest.fixture
def server(redis_url: str, start_server: StartServer) -> ServerProc:
    """One chat server instance over the shared Redis."""
    return start_server(redis_url=redis_url)


@pytest.fixture
def two_servers(redis_url: str, start_server: StartServer) -> tuple[ServerProc, ServerProc]:
    """Two chat server instances over the same Redis."""
    return start_server(redis_url=redis_url), start_server(redis_url=redis_url)
