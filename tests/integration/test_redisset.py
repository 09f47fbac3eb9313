"""The local Sentinel set of deploy/redis-sentinel with real processes: replication,
status, failover and rejoin, adding a replica, a restart of everything.
"""

from __future__ import annotations

import time

import pytest

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.integration.redisset_checks import (
    client,
    replicas_of,
    wait_value,
    write_replicated,
)


def test_write_on_primary_reaches_both_replicas(sentinel_set: LocalSet) -> None:
    primary = write_replicated(sentinel_set, "redisset:hello", "world", 2)
    replicas = replicas_of(sentinel_set, primary)
    assert len(replicas) == 2
    for replica in replicas:
        wait_value(replica, "redisset:hello", "world")


def test_status_reports_one_primary_two_replicas_and_sentinel_views(
    sentinel_set: LocalSet,
) -> None:
    status = sentinel_set.status()
    primary = sentinel_set.primary_address()
    assert status["primary"] == f"{primary[0]}:{primary[1]}"
    assert status["agreeing_sentinels"] == 3
    roles = sorted(n["role"] for n in status["nodes"])
    assert roles == ["master", "slave", "slave"]
    for node in status["nodes"]:
        if node["role"] == "slave":
            assert node["link"] == "up" and node["master"] == status["primary"]
            assert node["lag_bytes"] is not None
    for view in status["sentinels"]:
        assert view["primary"] == status["primary"]
        assert len(view["replicas_ok"]) == 2 and view["other_sentinels"] == 2
    text = sentinel_set.status_text()
    assert "primary" in text and status["primary"] in text
    assert sentinel_set.sentinel_arg == ",".join(
        f"{h}:{p}" for h, p in sentinel_set.sentinel_addresses())
    assert len(sentinel_set.pids()) == 6


@pytest.mark.slow
def test_sigkill_primary_is_failed_over_and_old_primary_rejoins_as_replica(
    fresh_sentinel_set: LocalSet,
) -> None:
    local = fresh_sentinel_set
    old = write_replicated(local, "before", "kill", 2)
    old_index = local.node_index(old)
    started = time.monotonic()
    local.kill_node(old_index)
    new = local.wait_for_failover(old, timeout=local.down_after_ms / 1000 + 8)
    assert time.monotonic() - started < local.down_after_ms / 1000 + 8
    assert new != old
    with client(new) as c:
        assert c.get("before") == "kill"
        c.set("after", "failover")

    local.restart_node(old_index)
    with client(old) as c:
        deadline = time.monotonic() + 15
        while True:
            info = c.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") == "up":
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        assert (info["master_host"], int(info["master_port"])) == new
    wait_value(old, "after", "failover")
    local.wait_healthy(15)


@pytest.mark.slow
def test_add_replica_replicates_and_sentinels_list_it(fresh_sentinel_set: LocalSet) -> None:
    local = fresh_sentinel_set
    write_replicated(local, "seed", "1", 2)
    index = local.add_replica()
    added = local.nodes[index].address
    wait_value(added, "seed", "1")
    for view in local.status()["sentinels"]:
        assert f"{added[0]}:{added[1]}" in view["replicas_ok"]
    # The new node is in state.json, so another process manages it too.
    assert len(LocalSet.load(local.root).nodes) == 4


@pytest.mark.slow
def test_kill_all_and_restart_all_keeps_data_and_starts_last_primary_first(
    fresh_sentinel_set: LocalSet,
) -> None:
    local = fresh_sentinel_set
    # Fail over first, so the last known primary is not the one node-0's
    # original config names: restart_all must read it from Sentinel's files.
    first = local.primary_address()
    local.kill_node(local.node_index(first))
    primary = local.wait_for_failover(first, timeout=15)
    local.restart_node(local.node_index(first))
    local.wait_healthy(20)
    for i in range(50):
        write_replicated(local, f"k{i}", f"v{i}", 2)
    time.sleep(1.5)  # appendfsync everysec: let every node fsync its AOF

    local.kill_all()
    assert local.pids() == {}
    assert local.last_known_primary() == primary
    assert local.restart_all() == primary
    assert local.primary_address() == primary
    for node in local.nodes:
        wait_value(node.address, "k49", "v49")
        with client(node.address) as c:
            assert c.mget([f"k{i}" for i in range(50)]) == [f"v{i}" for i in range(50)]
