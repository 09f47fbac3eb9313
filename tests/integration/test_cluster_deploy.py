"""The local Redis Cluster (deploy/redis-cluster/) forms, serves and fails over."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from deploy.redis_cluster.clusternode import SLOTS, cluster_info
from deploy.redis_cluster.localcluster import LocalCluster
from tests.cluster_fixture import MakeRedisCluster


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    host, port = redis_cluster.seeds[0]
    client = RedisCluster(host=host, port=port, password=redis_cluster.password,
                          decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def test_cluster_forms_three_shards_of_a_primary_and_two_replicas(
        redis_cluster: LocalCluster) -> None:
    shards = redis_cluster.shards()
    assert [len(s.replicas) for s in shards] == [2, 2, 2]
    assert all(s.primary is not None for s in shards)
    assert len({a for s in shards for a in s.nodes}) == 9


def test_slots_are_split_evenly_and_all_covered(redis_cluster: LocalCluster) -> None:
    counts = [s.slot_count for s in redis_cluster.shards()]
    assert sum(counts) == SLOTS
    assert max(counts) - min(counts) <= 1


def test_every_node_reports_cluster_state_ok(redis_cluster: LocalCluster) -> None:
    states = [(cluster_info(n) or {}).get("cluster_state") for n in redis_cluster.nodes]
    assert states == ["ok"] * 9
    assert redis_cluster.problems() == []


def test_a_key_written_through_the_cluster_client_is_readable(
        cluster_client: RedisCluster) -> None:
    cluster_client.set("{alice}:probe", "hello")
    assert cluster_client.get("{alice}:probe") == "hello"


def test_wait_on_the_keys_primary_counts_both_replicas(redis_cluster: LocalCluster) -> None:
    primary = redis_cluster.shard_of("{bob}:probe").primary
    assert primary is not None
    # WAIT counts only this connection's writes: write and wait on one
    # connection to the key's primary, as the server's group commit does.
    with redis_cluster.node(primary).client(timeout=10) as direct:
        direct.set("{bob}:probe", "durable")
        assert direct.execute_command("WAIT", 2, 5000) == 2


def test_seeds_name_every_node_for_the_server_flag(redis_cluster: LocalCluster) -> None:
    assert redis_cluster.cluster_nodes_arg.split(",") == [
        f"{h}:{p}" for h, p in redis_cluster.seeds]
    assert len(redis_cluster.seeds) == 9


@pytest.mark.slow
def test_killed_primary_fails_over_and_comes_back_as_a_replica(
        fresh_redis_cluster: LocalCluster) -> None:
    cluster = fresh_redis_cluster
    before = cluster.shard(0)
    assert before.primary is not None
    started = time.monotonic()
    cluster.kill(before.primary)
    new_primary = cluster.wait_for_failover(before, timeout=30)
    print(f"shard 0 failed over in {time.monotonic() - started:.1f}s (node timeout 2 s)")
    assert new_primary in before.replicas
    during = cluster.shard(0)
    assert during.primary == new_primary
    assert before.primary in during.replicas
    cluster.start(before.primary)
    after = cluster.shard(0)
    assert after.primary == new_primary
    assert before.primary in after.replicas
    assert after.slots == before.slots


@pytest.mark.slow
def test_password_protects_every_node_and_replication_still_works(
        make_redis_cluster: MakeRedisCluster) -> None:
    cluster = make_redis_cluster(shards=1, password="s3cret")
    node = cluster.nodes[0]
    with redis.Redis(host=node.host, port=node.port) as anonymous, \
            pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert cluster.problems() == []
    assert len(cluster.shard(0).replicas) == 2
