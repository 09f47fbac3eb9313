"""Fixtures owning a real local Redis Cluster (deploy/redis-cluster/).

redis_cluster        session-scoped, shared: 3 shards x (primary + 2 replicas);
                     tests must leave it healthy (no kills, no slot moves).
fresh_redis_cluster  a cluster of the test's own, for tests that kill nodes.
make_redis_cluster   factory for other shapes: make_redis_cluster(shards=1, password=...).
Every cluster is stopped at teardown, whatever the test did to it.
tests/conftest.py imports these, so every test can ask for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.redis_cluster.localcluster import LocalCluster

MakeRedisCluster = Callable[..., LocalCluster]


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A healthy 3x3 cluster shared by the session."""
    cluster = LocalCluster(root=tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def make_redis_cluster(tmp_path: Path) -> Iterator[MakeRedisCluster]:
    """make_redis_cluster(**LocalCluster keyword args) -> a created LocalCluster."""
    created: list[LocalCluster] = []

    def make(**kwargs: Any) -> LocalCluster:
        cluster = LocalCluster(root=tmp_path / f"redis-cluster-{len(created)}", **kwargs)
        created.append(cluster)
        cluster.create()
        return cluster

    try:
        yield make
    finally:
        for cluster in created:
            cluster.stop_all()


@pytest.fixture
def fresh_redis_cluster(make_redis_cluster: MakeRedisCluster) -> LocalCluster:
    """A created 3x3 cluster of this test's own (free ports), stopped at teardown."""
    return make_redis_cluster()
