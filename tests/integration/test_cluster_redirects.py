"""An ASK to a node redis-py does not know yet (redis/redis-py#4015) answers `unavailable`.

During `clusterctl add-shard` a slot's keys move to the new shard's primary
before it owns any slot, so it is not in redis-py's slot map and redis-py
8.1 fails the command unexecuted (server/storage/cluster_redirects.py).
These tests open such a move by hand: the slot MIGRATING on its owner,
IMPORTING on a new empty node, the user's keys migrated.
"""

from __future__ import annotations

import time

import pytest
from redis.asyncio import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from deploy.redis_cluster.formation import join
from deploy.redis_cluster.localcluster import LocalCluster
from deploy.redis_cluster.slotmove import node_ids
from server import keys
from server.storage.cluster_redirects import ask_to_unknown_node
from tests.cluster_fixture import MakeRedisCluster
from tests.conftest import StartServer
from tests.wsclient import Peer

pytestmark = pytest.mark.slow


class OpenMove:
    """A slot half-moved to a new empty node, as add-shard leaves it mid-move."""

    def __init__(self, cluster: LocalCluster, slot: int) -> None:
        self.cluster, self.slot = cluster, slot
        self.target = cluster.new_node()
        cluster.nodes.append(self.target)  # stopped with the cluster at teardown
        self.target.start(60.0)
        join([self.target], via=cluster.nodes[0], timeout=60.0)
        cluster.wait_healthy(60.0)  # every node knows the new one, and it knows the slots
        ids = {node: node_id for node_id, node in node_ids(cluster.nodes).items()}
        self.target_id = ids[self.target]
        self.source = next(
            cluster.node(s.primary or ("", 0)) for s in cluster.shards()
            if s.primary and any(a <= slot <= b for a, b in s.slots))
        with self.target.client() as target, self.source.client() as source:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[self.source])
            deadline = time.monotonic() + 30
            while self.target_id not in str(source.execute_command("CLUSTER", "NODES")):
                assert time.monotonic() < deadline, "the source never heard of the new node"
                time.sleep(0.05)  # the new node is gossiped to the source
            source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.target_id)
            moving = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            if moving:
                source.execute_command("MIGRATE", self.target.host, self.target.port, "", 0,
                                       5000, "KEYS", *moving)

    def finish(self) -> None:
        """The slot owned by the new node, on every primary."""
        for node in (self.target, self.source):
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)


@pytest.fixture
def small_cluster(make_redis_cluster: MakeRedisCluster) -> LocalCluster:
    return make_redis_cluster(shards=2, replicas=0)


async def test_redis_py_still_fails_an_ask_to_an_unknown_node_unexecuted(
        small_cluster: LocalCluster) -> None:
    # The guard for redis-py#4015: when a release fixes it, this fails, and
    # cluster_redirects.py (and this file's premise) can go.
    name = "amy"
    host, port = small_cluster.seeds[0]
    client = AsyncRedisCluster(host=host, port=port, decode_responses=True)
    try:
        await client.set(keys.account(name), "before")
        OpenMove(small_cluster, key_slot(keys.account(name).encode()))
        with pytest.raises(AttributeError) as caught:
            await client.get(keys.account(name))
        assert ask_to_unknown_node(caught.value), caught.value
        assert not ask_to_unknown_node(AttributeError("'NoneType' object has no attribute 'x'"))
    finally:
        await client.aclose()


async def test_reads_of_a_user_whose_slot_moves_to_an_unknown_node_answer_unavailable(
        small_cluster: LocalCluster, start_server: StartServer) -> None:
    server = start_server("--cluster-nodes", small_cluster.cluster_nodes_arg)
    amy, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await amy.register_login("amy")
    await bob.register_login("bob")
    await amy.send_message("bob", "hello")
    move = OpenMove(small_cluster, key_slot(keys.account("bob").encode()))
    for op, args in (("fetch", {}), ("list_users", {"pattern": "*", "limit": 10})):
        reply = await bob.request(op, **args)
        if op == "list_users" and "error" not in reply:
            continue  # the directory's slot is not the one moving
        assert reply["error"] == "unavailable", (op, reply)
    again = await Peer.connect(server.url)
    reply = await again.request("login", username="bob", password="correct horse")
    assert reply["error"] == "unavailable", reply
    move.finish()
    fetched = await bob.ok("fetch")
    assert [m["body"] for m in fetched["messages"]] == ["hello"]
