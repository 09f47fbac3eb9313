"""Chaos on a Redis Cluster under load: two nodes of one shard lost one after
the other, then every node killed and restarted; nothing acked is lost.

A cluster of the test's own (3 shards of a primary and two replicas,
cluster-node-timeout 2 s) under two server instances (default 5 s inbox
sweep, see the rig) and steady senders (tests/clusterload.py). Both
receivers (and the probe) live on shard 0, the shard the faults hit.
After the faults tests/chaosload.verify() checks that every acked send
arrived once, in order per sender (client dedupe applied), and `python -m
server.invariants` finds nothing wrong on the cluster. Each step prints
the outage it caused (see docs/failure-model.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.cluster_fixture import MakeRedisCluster
from tests.clusterload import (
    FAILOVER_WITHIN,
    ClusterRig,
    kill_primary,
    slots_of,
    start_rig,
)
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient

pytestmark = pytest.mark.slow


@pytest.fixture
async def rig(make_redis_cluster: MakeRedisCluster, start_server: StartServer,
              chat_clients: MakeClient) -> AsyncIterator[Callable[[], Awaitable[ClusterRig]]]:
    """rig() -> a ClusterRig whose receivers live on shard 0; all stopped at teardown."""
    rigs: list[ClusterRig] = []

    async def make() -> ClusterRig:
        cluster = await asyncio.to_thread(make_redis_cluster)
        shard = await asyncio.to_thread(cluster.shard, 0)
        # The server's default sweep (5 s), not an hour: after the restart of
        # every node pushes by the listener still stall now and then (an open
        # bug, docs/failure-model.md: 10 pushes not within 30 s in a CI run),
        # and the sweep delivers then. The failovers alone are covered with the
        # sweep an hour away by test_cluster_failover.py and the slot-move test.
        made = await start_rig(cluster, start_server, chat_clients, slots_of(shard),
                               sweep_ms=5000)
        rigs.append(made)
        return made

    yield make
    for made in rigs:
        await made.close()


async def test_two_primaries_of_one_shard_lost_in_turn_then_every_node_lose_no_acked_message(
    rig: Callable[[], Awaitable[ClusterRig]],
) -> None:
    chaos = await rig()
    # The primary dies, a replica takes over; then that new primary dies and
    # the shard's last node takes over, acking alone (no replica left to wait for).
    for turn in ("first", "second"):
        moved, promoted_after = await kill_primary(chaos, 0)
        print(f"\n{turn} failover of shard 0: {moved} promoted {promoted_after:.2f}s after "
              "the SIGKILL", flush=True)
    await chaos.load.wait_progress(30, FAILOVER_WITHIN, "sends with one node left in shard 0")

    # The crash of the whole cluster, milliseconds after the last acks. Every
    # node comes back from its own nodes.conf and AOF, the two that died first
    # too: they rejoin as replicas of the shard's last primary.
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "load before the kill")
    fault = time.monotonic()
    await asyncio.to_thread(chaos.cluster.kill_all)
    await asyncio.to_thread(chaos.cluster.start_all, FAILOVER_WITHIN * 2)
    await chaos.outage_after(fault, "SIGKILL of every node, then start_all()")
    result = await chaos.recovered_and_kept_every_ack("after the restart of every node")
    assert result.acked >= 100
