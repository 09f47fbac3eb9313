"""Every node of the local cluster restarted from its folder: the same slot
map and the data come back (nodes.conf and the AOF)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from deploy.redis_cluster.localcluster import LocalCluster

pytestmark = pytest.mark.slow

KEYS = 3000


def slot_map(cluster: LocalCluster) -> list[tuple[int, tuple[tuple[int, int], ...], str]]:
    """(shard, slots, primary id-free address) as the cluster reports it."""
    return [(s.index, s.slots, f"{s.primary}") for s in cluster.shards()]


@pytest.fixture
def filled(fresh_redis_cluster: LocalCluster) -> Iterator[LocalCluster]:
    host, port = fresh_redis_cluster.seeds[0]
    with RedisCluster(host=host, port=port, decode_responses=True) as client:
        client.mset_nonatomic({f"r:{i}": str(i) for i in range(KEYS)})
    yield fresh_redis_cluster


def read_all(cluster: LocalCluster) -> list[str | None]:
    host, port = cluster.seeds[0]
    with RedisCluster(host=host, port=port, decode_responses=True) as client:
        return list(client.mget_nonatomic([f"r:{i}" for i in range(KEYS)]))


def test_stop_all_then_start_all_brings_back_the_slot_map_and_every_key(
        filled: LocalCluster) -> None:
    before = slot_map(filled)
    filled.stop_all()
    assert filled.pids() == {}
    started = time.monotonic()
    filled.start_all()
    print(f"9 nodes back to cluster_state ok in {time.monotonic() - started:.1f}s")
    assert slot_map(filled) == before
    assert filled.problems() == []
    assert read_all(filled) == [str(i) for i in range(KEYS)]


def test_sigkill_of_every_node_keeps_what_the_aof_had_synced(filled: LocalCluster) -> None:
    before = slot_map(filled)
    time.sleep(1.5)  # appendfsync everysec: the writes are on disk after a second
    filled.kill_all()
    filled.start_all()
    assert slot_map(filled) == before
    assert read_all(filled) == [str(i) for i in range(KEYS)]


def test_a_failed_over_shard_keeps_its_new_primary_across_a_full_restart(
        fresh_redis_cluster: LocalCluster) -> None:
    cluster = fresh_redis_cluster
    before = cluster.shard(1)
    assert before.primary is not None
    cluster.kill(before.primary)
    new_primary = cluster.wait_for_failover(before)
    cluster.start(before.primary)
    cluster.stop_all()
    cluster.start_all()
    assert cluster.shard(1).primary == new_primary
    assert cluster.shard(1).slots == before.slots
