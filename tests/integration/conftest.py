"""Fixtures owning a real Redis Sentinel set (3 nodes, 3 Sentinels).

sentinel_set        session-scoped, shared: do not kill its nodes.
fresh_sentinel_set  a set of the test's own, for tests that kill nodes.
make_sentinel_set   factory for other configs: make_sentinel_set(password=...).
Each set is stopped at teardown, whatever the test did to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client import ChatClient
from deploy.redis_sentinel.sentinelset import LocalSet

MakeSentinelSet = Callable[..., LocalSet]
MakeClient = Callable[..., ChatClient]


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSet]:
    """A started set shared by the session; tests must leave it healthy."""
    local = LocalSet(root=tmp_path_factory.mktemp("sentinel-set"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def make_sentinel_set(tmp_path: Path) -> Iterator[MakeSentinelSet]:
    """make_sentinel_set(**LocalSet keyword args) -> a started LocalSet."""
    started: list[LocalSet] = []

    def make(**kwargs: Any) -> LocalSet:
        local = LocalSet(root=tmp_path / f"sentinel-set-{len(started)}", **kwargs)
        started.append(local)
        local.start()
        return local

    try:
        yield make
    finally:
        for local in started:
            local.stop()


@pytest.fixture
def fresh_sentinel_set(make_sentinel_set: MakeSentinelSet) -> LocalSet:
    """A started set of this test's own (free ports), stopped at teardown."""
    return make_sentinel_set()


@pytest.fixture
async def chat_clients() -> AsyncIterator[MakeClient]:
    """chat_clients(*urls) -> a ChatClient that retries fast (closed at teardown)."""
    made: list[ChatClient] = []

    def make(*urls: str) -> ChatClient:
        client = ChatClient(urls=list(urls), backoff_base=0.05, backoff_cap=0.5,
                            retry_deadline=60.0)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
