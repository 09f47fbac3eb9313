"""How the deploy tools read CLUSTER SHARDS after failovers (deploy/redis-cluster)."""

from __future__ import annotations

from typing import Any

from deploy.redis_cluster.clusterprobes import _shard


def node(port: int, role: str, health: str) -> dict[str, Any]:
    return {"ip": "127.0.0.1", "port": port, "role": role, "health": health}


def test_the_online_primary_leads_a_shard_that_lists_failed_ex_primaries_as_masters() -> None:
    # Valkey 9.1 after two failovers in one shard: both dead primaries are
    # still listed with role master (they never came back to be demoted).
    entry: dict[str, object] = {"id": "s0", "slots": [0, 5460], "nodes": [
        node(7000, "master", "fail"), node(7001, "master", "online"),
        node(7002, "master", "fail"), node(7009, "replica", "online")]}
    shard = _shard(0, entry)
    assert shard.primary == ("127.0.0.1", 7001)
    assert ("127.0.0.1", 7001) not in shard.replicas


def test_a_shard_whose_only_primary_failed_still_names_it() -> None:
    # Before the failover: callers pass this Shard to wait_for_failover.
    entry: dict[str, object] = {"id": "s0", "slots": [0, 5460], "nodes": [
        node(7000, "master", "fail"), node(7001, "replica", "online")]}
    assert _shard(0, entry).primary == ("127.0.0.1", 7000)
