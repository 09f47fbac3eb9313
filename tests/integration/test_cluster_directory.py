"""The name directory on a Redis Cluster stays consistent when a crash splits register or delete.

On a Cluster the directory (chat:users) is in a slot of its own, so register
and delete_account each take two durable steps (server/data/directory.py).
These tests leave the data as a crash between the steps would, and check
that the repair, or the next register of the name, completes the step, and
that the invariants check holds only then.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from deploy.redis_cluster.localcluster import LocalCluster
from server import invariants, keys
from server.data.directory import PENDING
from tests.conftest import StartServer
from tests.wsclient import Peer

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A client of the shared cluster, every primary flushed."""
    host, port = redis_cluster.seeds[0]
    client = RedisCluster(host=host, port=port, decode_responses=True)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


def crashed_after_creating(cluster: RedisCluster, name: str) -> None:
    """An account created by register's first step, its listing never made."""
    cluster.hset(keys.account(name), mapping={"pw": "x", "gen": "g1", "created": 1, PENDING: 1})


async def test_a_register_cut_before_its_listing_fails_the_check_until_repaired(
        redis_cluster: LocalCluster, cluster: RedisCluster) -> None:
    crashed_after_creating(cluster, "zed")
    cluster.zadd(keys.USERS, {"ghost": 0})  # a delete cut before its unlisting
    problems = await invariants.check_cluster(redis_cluster.cluster_nodes_arg)
    assert problems == []
    assert cluster.zrange(keys.USERS, 0, -1) == ["zed"]
    assert cluster.hget(keys.account("zed"), PENDING) is None


async def test_without_the_repair_the_check_names_the_unlisted_account(
        redis_cluster: LocalCluster, cluster: RedisCluster) -> None:
    # The repair above must be what fixes it: the plain check sees the violation.
    crashed_after_creating(cluster, "zed")
    assert await invariants.check_cluster(redis_cluster.cluster_nodes_arg, repair=False) == [
        f"account 'zed' is not in {keys.USERS}"]


async def test_registering_a_name_whose_listing_was_cut_completes_it(
        redis_cluster: LocalCluster, cluster: RedisCluster, start_server: StartServer) -> None:
    server = start_server("--cluster-nodes", redis_cluster.cluster_nodes_arg)
    peer = await Peer.connect(server.url)
    await peer.register_login("amy")
    # After the server's start-up repair (it ran on an empty cluster): only the register fixes it.
    crashed_after_creating(cluster, "zed")
    reply = await peer.request("register", username="zed", password="correct horse")
    assert reply["error"] == "username_taken"
    assert (await peer.ok("list_users", pattern="z*", limit=10))["users"] == ["zed"]
    assert cluster.hget(keys.account("zed"), PENDING) is None
