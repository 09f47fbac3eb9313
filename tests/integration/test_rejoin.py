"""A Redis node coming back under load: fenced, not waited for, and nothing acked lost.

The same rig as tests/integration/test_chaos.py (two server instances, one
local Sentinel set, down-after 1 s, senders retrying on the other instance).
An old primary restarted from its own config believes it is a master; the
servers fence it (replica-priority 0), point it at the current primary and
leave it out of the WAIT until it is in sync, then lift the fence
(server/storage/fencing.py, docs/failure-model.md). The gap measured is the longest
span in which no send was acked, by any sender or the probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from deploy.redis_sentinel.sentinelset import LocalSet
from server import keys
from tests.chaosload import eventually
from tests.conftest import StartServer
from tests.integration import test_chaos
from tests.integration.test_chaos import (
    FAILOVER_WITHIN,
    Rig,
    crash,
    primary_index,
    priorities,
    replica_index,
)
from tests.integration.test_failover import metric
from tests.outage_probe import longest_ack_gap

pytestmark = pytest.mark.slow

rig = test_chaos.rig  # the fixture: two instances under load over a Sentinel set

#: The issue's target for a node coming back (the failover itself is ~2-3 s).
REJOIN_GAP_S = 1.5
#: How long after a rejoin the gap is watched (the old way stalled ~10 s).
WATCH_S = 12.0
#: A fence is lifted this long after its node is in sync, at the defaults.
LIFT_AFTER_S = 8.5


async def no_fence_left(local: LocalSet) -> None:
    await asyncio.to_thread(local.wait_healthy, FAILOVER_WITHIN)
    await eventually(lambda: all(p not in ("0", None) for p in priorities(local).values()),
                     FAILOVER_WITHIN, "every node's replica-priority restored")


async def start_from_own_config(local: LocalSet, index: int) -> float:
    """Start node `index` from its file as it is (an old primary: "I am the master")."""
    started = time.monotonic()
    await asyncio.to_thread(local.nodes[index].start)
    await asyncio.to_thread(local.save)
    return started


async def rejoin_gap(chaos: Rig, index: int) -> float:
    fault = await start_from_own_config(chaos.local, index)
    await asyncio.sleep(WATCH_S)
    gap = longest_ack_gap(chaos.load, chaos.probe, fault, time.monotonic())
    print(f"\nMEASURED old primary node-{index} restarted from its own config: longest "
          f"span with no send acked {gap:.2f}s", flush=True)
    node = chaos.local.nodes[index]
    assert any(f"fenced returning Redis node {node.host}:{node.port}" in server.log()
               for server in chaos.servers)
    return gap


async def test_old_primary_restarted_twice_on_different_nodes_stalls_writes_at_most_1_5_s(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    chaos = await rig()
    gaps = []
    for _ in range(2):
        old = await crash(chaos, "primary")
        gaps.append(await rejoin_gap(chaos, old))
        await no_fence_left(chaos.local)
        await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the rejoin")
    result = await chaos.load.finish()
    print(f"\nrejoin twice: {result.describe()}", flush=True)
    assert result.ok, result.describe()
    assert max(gaps) <= REJOIN_GAP_S, gaps


async def test_new_primary_crashing_just_after_the_old_one_returned_loses_no_acked_message(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    chaos = await rig()
    local = chaos.local
    old = await crash(chaos, "primary")
    new = primary_index(local)
    await start_from_own_config(local, old)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(local.kill_node, new)
    await asyncio.to_thread(local.wait_for_failover, local.nodes[new].address, FAILOVER_WITHIN)
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the second failover")
    await asyncio.to_thread(local.restart_node, new)
    await no_fence_left(local)
    result = await chaos.load.finish()
    print(f"\nnew primary crashed 0.3 s after the rejoin: {result.describe()}", flush=True)
    assert result.ok, result.describe()


async def test_replica_down_old_primary_back_then_primary_crash_refuses_rather_than_acks(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    """The worst order: the only replica holding every acked write is gone,
    so the returning node is not fenced but waited for; when the primary
    then dies, what was acked is on the node Sentinel can promote."""
    chaos = await rig()
    local = chaos.local
    old = await crash(chaos, "primary")
    replica = replica_index(local)
    await asyncio.to_thread(local.kill_node, replica)
    primary = primary_index(local)
    await start_from_own_config(local, old)
    await asyncio.sleep(1.0)
    node = local.nodes[old]
    # No other replica holds the acked writes: it is waited for, not fenced.
    assert not any(f"fenced returning Redis node {node.host}:{node.port}" in server.log()
                   for server in chaos.servers)
    await asyncio.to_thread(local.kill_node, primary)
    await asyncio.to_thread(local.wait_for_failover, local.nodes[primary].address,
                            FAILOVER_WITHIN)
    for index in (primary, replica):
        await asyncio.to_thread(local.restart_node, index)
    await no_fence_left(local)
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the restarts")
    result = await chaos.load.finish()
    print(f"\nreplica down, old primary back, primary crash: {result.describe()}", flush=True)
    assert result.ok, result.describe()


async def test_replica_killed_then_restarted_rejoins_without_stalling_writes(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    chaos = await rig()
    index = await crash(chaos, "replica")
    restarted = time.monotonic()
    await asyncio.to_thread(chaos.local.restart_node, index)  # the deploy path: fenced
    await asyncio.sleep(WATCH_S / 2)
    gap = longest_ack_gap(chaos.load, chaos.probe, restarted, time.monotonic())
    print(f"\nMEASURED replica restarted: longest span with no send acked {gap:.2f}s",
          flush=True)
    await no_fence_left(chaos.local)
    result = await chaos.load.finish()
    assert result.ok, result.describe()
    assert gap <= REJOIN_GAP_S


def node_client(local: LocalSet, index: int) -> redis.Redis:
    return local.nodes[index].client()


async def test_fence_left_by_a_crashed_instance_is_lifted_by_another(
    fresh_sentinel_set: LocalSet, start_server: StartServer,
) -> None:
    local = fresh_sentinel_set
    primary = primary_index(local)
    replica = replica_index(local)
    node = local.nodes[replica]
    with node_client(local, primary) as c:
        c.hset(keys.FENCES, f"{node.host}:{node.port}", 77)
    with node_client(local, replica) as c:
        c.config_set("replica-priority", 0)
    server = await asyncio.to_thread(
        start_server, "--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name)
    started = time.monotonic()
    await eventually(lambda: priorities(local)[replica] == "77", FAILOVER_WITHIN,
                     "the fence is lifted to the recorded priority")
    # Not before another instance's write that read a required set without
    # it may have ended (view max age 6.5 s + ack timeout 1 s + 1 s).
    assert time.monotonic() - started >= LIFT_AFTER_S - 1.0
    with node_client(local, primary) as c:
        assert c.hget(keys.FENCES, f"{node.host}:{node.port}") is None
    assert f"lifted the fence of Redis node {node.host}:{node.port}" in server.log()


async def test_operators_priority_zero_is_left_alone(
    fresh_sentinel_set: LocalSet, start_server: StartServer,
) -> None:
    local = fresh_sentinel_set
    replica = replica_index(local)
    with node_client(local, replica) as c:
        c.config_set("replica-priority", 0)
    await asyncio.to_thread(
        start_server, "--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name)
    await asyncio.sleep(3.0)  # six topology polls
    assert priorities(local)[replica] == "0"


async def test_manual_failover_under_load_is_not_undone_and_loses_no_acked_message(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    """While Sentinel promotes a replica it reports master before the
    Sentinel majority names it: it must not be taken for a stale primary
    (repointed, or fenced and left out of the WAIT)."""
    chaos = await rig()
    local = chaos.local
    old = local.primary_address()
    with local.sentinels[0].client() as sentinel:
        sentinel.sentinel_failover(local.master_name)
    new = await asyncio.to_thread(local.wait_for_failover, old, FAILOVER_WITHIN)
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the manual failover")
    assert local.primary_address() == new
    await no_fence_left(local)
    result = await chaos.load.finish()
    assert result.ok, result.describe()


def sentinel_priorities(local: LocalSet, node: tuple[str, int]) -> set[str]:
    """The slave-priority every Sentinel last read for `node`."""
    seen = set()
    for sentinel in local.sentinels:
        with sentinel.client() as c:
            for r in c.sentinel_slaves(local.master_name):
                if (r["ip"], int(r["port"])) == (node[0], node[1]):
                    seen.add(str(r.get("slave-priority")))
    return seen


async def test_a_replica_that_acks_but_is_not_required_still_counts_in_the_wait(
    fresh_sentinel_set: LocalSet, start_server: StartServer,
) -> None:
    """WAIT counts acks, not names: a replica Sentinel may not promote
    (priority 0) still acks, so `WAIT 1` with one required replica could be
    met by it alone. Every replica online at the primary counts."""
    local = fresh_sentinel_set
    replica = replica_index(local)
    with node_client(local, replica) as c:
        c.config_set("replica-priority", 0)
    node = local.nodes[replica]
    await eventually(lambda: sentinel_priorities(local, (node.host, node.port)) == {"0"},
                     FAILOVER_WITHIN, "every Sentinel reads priority 0")
    server = await asyncio.to_thread(
        start_server, "--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name)
    await asyncio.sleep(1.5)  # three topology polls
    assert metric(server, "chat_required_replicas") == 2
    assert priorities(local)[replica] == "0"  # the operator's: not touched
