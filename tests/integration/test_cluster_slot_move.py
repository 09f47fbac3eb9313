"""Slots holding active users move to a new shard under load: nothing acked
is lost and live pushes go on.

The receivers and the probe are named so that their slots are among those
cluster-deploy's add-shard will move (the top slots of every shard), so the
users receiving the load change shards while they receive it. Two server
instances, steady senders, the inbox sweep an hour away (tests/clusterload.py):
every message after the move came by a listener that followed the slots.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from deploy.redis_cluster.localcluster import LocalCluster
from deploy.redis_cluster.reshard import add_shard, slots_to_take
from tests.cluster_fixture import MakeRedisCluster
from tests.clusterload import ClusterRig, start_rig
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient

pytestmark = pytest.mark.slow

#: Slots moved (a third from each shard); each SETSLOT rewrites nodes.conf, so few.
MOVED = 60


def moved_to(cluster: LocalCluster, rig: ClusterRig) -> set[int]:
    """The shard index now holding each receiver's (and the probe's) slot."""
    names = [r.name for r in rig.load.receivers] + [rig.probe.name]
    return {cluster.shard_of(name).index for name in names}


async def test_moving_the_slots_of_active_users_to_a_new_shard_loses_no_acked_message(
    make_redis_cluster: MakeRedisCluster, start_server: StartServer,
    chat_clients: MakeClient,
) -> None:
    cluster = await asyncio.to_thread(make_redis_cluster)
    moving = set(slots_to_take(await asyncio.to_thread(cluster.shards), MOVED))
    rig = await start_rig(cluster, start_server, chat_clients, moving)
    try:
        assert moved_to(cluster, rig) <= {0, 1, 2}
        started = time.monotonic()
        new = await asyncio.to_thread(add_shard, cluster, slots=MOVED, replicas=2)
        print(f"\nadd-shard moved {MOVED} slots in {time.monotonic() - started:.2f}s",
              flush=True)
        assert moved_to(cluster, rig) == {new.index}
        await rig.outage_after(started, f"moving {MOVED} slots of active users")
        await rig.recovered_and_kept_every_ack("after the move")
    finally:
        await rig.close()
