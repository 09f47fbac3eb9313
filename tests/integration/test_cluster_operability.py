"""Operating on the real cluster: the sharded pub/sub the listener relies on, /healthz, `check`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.cluster import RedisCluster as SyncCluster

from deploy.redis_cluster.localcluster import LocalCluster
from server import keys
from server.storage.pubsub_reader import PubSubReader
from tests.cluster_fixture import MakeRedisCluster
from tests.conftest import StartServer
from tests.integration.test_check import check
from tests.scrape import healthz
from tests.wsclient import Peer

pytestmark = pytest.mark.slow


async def test_a_shard_primarys_reader_gets_what_is_spublished_on_its_channels(
        redis_cluster: LocalCluster) -> None:
    channel = keys.channel("pia")
    primary = redis_cluster.shard_of(channel).primary
    assert primary is not None
    node = Redis(host=primary[0], port=primary[1], decode_responses=True)
    cluster = RedisCluster(host=primary[0], port=primary[1], decode_responses=True)
    reader = PubSubReader(node)
    try:
        await reader.pubsub.ssubscribe(channel)
        assert await reader.read(timeout=1.0) == []  # the confirmation
        for i in range(3):
            await cluster.spublish(channel, str(i))
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            got += await reader.read(timeout=1.0)
        assert got == [(channel, "0"), (channel, "1"), (channel, "2")]
    finally:
        await reader.pubsub.aclose()  # type: ignore[no-untyped-call]
        await node.aclose()
        await cluster.aclose()


def test_healthz_on_a_cluster_is_ok_with_a_ping_back_on_every_shard(
        redis_cluster: LocalCluster, start_server: StartServer) -> None:
    server = start_server("--cluster-nodes", redis_cluster.cluster_nodes_arg)
    deadline = time.monotonic() + 15
    status, body = healthz(server.http_url)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, body = healthz(server.http_url)
    assert status == 200, body
    assert len(str(body["primary"]).split(",")) == len(redis_cluster.shards()) == 3
    # Its write probe reached every shard primary: one marker on each.
    host, port = redis_cluster.seeds[0]
    cluster = SyncCluster(host=host, port=port, decode_responses=True)
    try:
        markers = list(cluster.scan_iter(match=f"chat:health:*:{server.name}"))
        assert sorted(str(redis_cluster.shard_of(m).index) for m in markers) == ["0", "1", "2"]
    finally:
        cluster.close()


def test_check_asks_every_shard_primary_and_passes_on_a_healthy_cluster(
        redis_cluster: LocalCluster) -> None:
    code, lines = check("--cluster-nodes", redis_cluster.cluster_nodes_arg)
    assert code == 0, lines
    primaries = [f"{s.primary[0]}:{s.primary[1]}" for s in redis_cluster.shards() if s.primary]
    assert lines["cluster"] == "OK 3 shard primaries: " + ", ".join(sorted(primaries))
    assert "fences" not in lines  # Sentinel's, not the cluster's


def test_check_writes_its_marker_on_every_shard_primary_itself(
        redis_cluster: LocalCluster) -> None:
    # Through the cluster client the marker proved one shard accepts writes, not each.
    code, lines = check("--cluster-nodes", redis_cluster.cluster_nodes_arg)
    assert code == 0, lines
    assert "confirmed by 2 replicas" in lines["primary"]
    for shard in redis_cluster.shards():
        assert shard.primary is not None
        with redis_cluster.node(shard.primary).client() as node:
            assert list(node.scan_iter(match="chat:health:*:check")), shard.primary


async def test_a_server_given_the_password_file_serves_on_a_password_protected_cluster(
        make_redis_cluster: MakeRedisCluster, start_server: StartServer, tmp_path: Path) -> None:
    cluster = make_redis_cluster(password="cluster secret")
    secret = tmp_path / "password"
    secret.write_text("cluster secret\n")
    server = start_server("--cluster-nodes", cluster.cluster_nodes_arg,
                          "--redis-password-file", str(secret))
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    await alice.send_message("bob", "through the password")
    assert (await bob.event())["message"]["body"] == "through the password"
