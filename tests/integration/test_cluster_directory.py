"""The name directory on a Redis Cluster stays consistent when a crash splits register or delete.

On a Cluster the directory (chat:users) is in a slot of its own, so register
and delete_account each take two durable steps (server/data/directory.py).
These tests leave the data as a crash between the steps would, and check
that the repair, or the next register of the name, completes the step, and
that the invariants check holds only then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from redis.cluster import RedisCluster

from deploy.redis_cluster.localcluster import LocalCluster
from server import invariants, keys
from server.data.directory import PENDING, pending_key
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


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def cut_register(cluster: RedisCluster, name: str) -> None:
    """As register.lua leaves it before the listing: marked, and in its slot's pending set."""
    crashed_after_creating(cluster, name)
    cluster.sadd(pending_key(name), name)


def cut_delete(cluster: RedisCluster, name: str) -> None:
    """As delete_account.lua leaves it before the unlisting."""
    cluster.zadd(keys.USERS, {name: 0})
    cluster.sadd(pending_key(name), name)


async def test_a_running_server_sweeps_registers_cut_before_their_listing(
        redis_cluster: LocalCluster, cluster: RedisCluster, start_server: StartServer) -> None:
    start_server("--cluster-nodes", redis_cluster.cluster_nodes_arg, "--sweep-interval-ms", "200")
    cut_register(cluster, "zed")
    assert wait_until(lambda: cluster.zrange(keys.USERS, 0, -1) == ["zed"]), "never listed"
    # Past the start-up pass, whenever zed was fixed: only a periodic round lists zoe.
    cut_register(cluster, "zoe")
    assert wait_until(lambda: cluster.zrange(keys.USERS, 0, -1) == ["zed", "zoe"])
    assert wait_until(lambda: cluster.scard(pending_key("zoe")) == 0)
    assert cluster.hget(keys.account("zoe"), PENDING) is None
    assert await invariants.check_cluster(redis_cluster.cluster_nodes_arg, repair=False) == []


async def test_a_running_server_sweeps_deletes_cut_before_their_unlisting(
        redis_cluster: LocalCluster, cluster: RedisCluster, start_server: StartServer) -> None:
    start_server("--cluster-nodes", redis_cluster.cluster_nodes_arg, "--sweep-interval-ms", "200")
    cut_delete(cluster, "ghost")
    assert wait_until(lambda: cluster.zcard(keys.USERS) == 0), "never unlisted"
    assert wait_until(lambda: cluster.scard(pending_key("ghost")) == 0)
    cut_delete(cluster, "wraith")  # past the start-up pass
    assert wait_until(lambda: cluster.zcard(keys.USERS) == 0), "never unlisted"
    assert wait_until(lambda: cluster.scard(pending_key("wraith")) == 0)


async def test_register_and_delete_leave_nothing_pending(
        redis_cluster: LocalCluster, cluster: RedisCluster, start_server: StartServer) -> None:
    server = start_server("--cluster-nodes", redis_cluster.cluster_nodes_arg)
    peer = await Peer.connect(server.url)
    await peer.register_login("amy")
    assert cluster.scard(pending_key("amy")) == 0
    assert cluster.zrange(keys.USERS, 0, -1) == ["amy"]
    await peer.ok("delete_account", password="correct horse")
    assert cluster.scard(pending_key("amy")) == 0
    assert cluster.zcard(keys.USERS) == 0
    assert await invariants.check_cluster(redis_cluster.cluster_nodes_arg, repair=False) == []


async def test_the_check_names_a_name_left_pending(
        redis_cluster: LocalCluster, cluster: RedisCluster) -> None:
    cut_delete(cluster, "ghost")
    assert await invariants.check_cluster(redis_cluster.cluster_nodes_arg, repair=False) == [
        f"{keys.USERS} lists 'ghost' without an account",
        "user 'ghost' is still in its slot's directory pending set"]
