"""Faults and slot moves on a Redis Cluster under load: nothing acked is lost, pushes go on.

Two server instances share a local cluster of this test's own (3 shards, a
primary and two replicas each, cluster-node-timeout 2 s). Senders talk to
one instance and send to receivers on the other; the receivers' names are
chosen so their slots sit on the shard the test hits. The inbox sweep is
set to an hour, so a message a receiver gets after the fault came by
pub/sub (or by the catch-up after the listener resubscribed), never by the
periodic re-read. After the fault tests/chaosload.verify() checks that every
acked send arrived once, in order per sender, and the invariants hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from deploy.redis_cluster.clusterprobes import Shard
from deploy.redis_cluster.localcluster import LocalCluster
from server import invariants
from tests.chaosload import Load, Receiver, Sender, logged_in
from tests.cluster_fixture import MakeRedisCluster
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient
from tests.procs import ServerProc

pytestmark = pytest.mark.slow

#: Generous bound for one failover (node timeout 2 s), on a machine shared with other runs.
FAILOVER_WITHIN = 30.0


def names_on(shard: Shard, prefix: str, count: int) -> list[str]:
    """User names whose slot (hash tag {name}) the shard holds."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        name = f"{prefix}{n}"
        slot = key_slot(name.encode())
        if any(low <= slot <= high for low, high in shard.slots):
            found.append(name)
        n += 1
    return found


@dataclass
class Rig:
    cluster: LocalCluster
    servers: tuple[ServerProc, ServerProc]
    load: Load
    #: The shard holding every receiver's data and channel.
    shard: Shard


@pytest.fixture
async def rig(make_redis_cluster: MakeRedisCluster, start_server: StartServer,
              chat_clients: MakeClient) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """rig() -> a started Rig; every client, server and node is stopped at teardown."""
    loads: list[Load] = []

    async def make(sweep_ms: int = 3_600_000) -> Rig:
        cluster = await asyncio.to_thread(make_redis_cluster)
        args = ("--cluster-nodes", cluster.cluster_nodes_arg, "--sweep-interval-ms", str(sweep_ms))
        a, b = start_server(*args), start_server(*args)
        shard = cluster.shard(0)
        receivers = [Receiver(await logged_in(chat_clients(b.url), name), name)
                     for name in names_on(shard, "r", 2)]
        senders = [Sender(await logged_in(chat_clients(a.url), f"s{i}"), f"s{i}", r.name)
                   for i, r in enumerate(receivers)]
        load = Load(senders, receivers)
        loads.append(load)
        load.start()
        return Rig(cluster, (a, b), load, shard)

    yield make
    for load in loads:
        await load.close()


async def promoted_away_from(cluster: LocalCluster, name: str, old: tuple[str, int]) -> None:
    """Wait until the shard holding `name` has an online primary other than `old`.

    By the slot: LocalCluster.wait_for_failover, which finds the shard by its
    id, did not see the second failover in a row here (reported to cluster-deploy)."""
    async def moved() -> bool:
        shard = await asyncio.to_thread(cluster.shard_of, f"{{{name}}}")
        return shard.primary not in (None, old) and \
            dict(shard.health).get(shard.primary) == "online"
    await eventually_async(moved, FAILOVER_WITHIN, f"a new primary for {name}'s shard")


async def eventually_async(check: Callable[[], Awaitable[bool]], within: float,
                           what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        await asyncio.sleep(0.2)


async def check_invariants(cluster: LocalCluster) -> None:
    problems = await invariants.check_cluster(cluster.cluster_nodes_arg)
    assert problems == [], "\n".join(problems)


async def test_sigkill_of_a_shard_primary_loses_no_acked_message_and_pushes_resume(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    r = await rig()
    await r.load.wait_progress(20, within=30, what="before the fault")
    assert r.shard.primary is not None
    await asyncio.to_thread(r.cluster.kill, r.shard.primary)
    promoted = await asyncio.to_thread(r.cluster.wait_for_failover, r.shard, FAILOVER_WITHIN)
    assert promoted != r.shard.primary
    before = [len(receiver.received) for receiver in r.load.receivers]
    await r.load.wait_progress(20, within=FAILOVER_WITHIN, what="after the failover")
    # Live: with the sweep an hour away, these came by the resubscribed listener.
    await asyncio.sleep(2)
    assert all(len(rc.received) >= n + 20 for rc, n in zip(r.load.receivers, before,
                                                               strict=True))
    report = await r.load.finish(within=30)
    assert report.ok, report.describe()
    assert report.acked >= 80
    await check_invariants(r.cluster)



async def test_killing_a_shards_primary_then_its_successor_then_every_node_loses_nothing(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    # The server's default sweep (5 s): this test is about loss over the whole
    # sequence. Pushes by the resubscribed listener after the restart of every
    # node are test_cluster_chaos.py's (sweep an hour away); here they stalled
    # once (57 messages not pushed within 30 s, a CI run on a loaded machine),
    # cause not found yet (docs/failure-model.md).
    r = await rig(sweep_ms=5000)
    await r.load.wait_progress(20, within=30, what="before the faults")
    first = r.shard
    assert first.primary is not None
    await asyncio.to_thread(r.cluster.kill, first.primary)
    await asyncio.to_thread(r.cluster.wait_for_failover, first, FAILOVER_WITHIN)
    await asyncio.to_thread(r.cluster.start, first.primary)  # rejoins as a replica
    await r.load.wait_progress(10, within=FAILOVER_WITHIN, what="after the first failover")
    second = r.cluster.shard(first.index)
    assert second.primary is not None and second.primary != first.primary
    await asyncio.to_thread(r.cluster.kill, second.primary)
    await promoted_away_from(r.cluster, r.load.receivers[0].name, second.primary)
    await r.load.wait_progress(10, within=FAILOVER_WITHIN, what="after the second failover")
    await asyncio.to_thread(r.cluster.kill_all)
    await asyncio.to_thread(r.cluster.start_all)
    await r.load.wait_progress(10, within=60, what="after every node restarted")
    report = await r.load.finish(within=30)
    assert report.ok, report.describe()
    await check_invariants(r.cluster)


def move_slot(slot: int, source: tuple[str, int], target: tuple[str, int]) -> None:
    """Move `slot` and its keys from one primary to another, as an operator does
    (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE on both)."""
    src = redis.Redis(*source, decode_responses=True)
    dst = redis.Redis(*target, decode_responses=True)
    run: Callable[..., Any] = lambda node, *args: node.execute_command(*args)  # noqa: E731
    try:
        src_id, dst_id = run(src, "CLUSTER MYID"), run(dst, "CLUSTER MYID")
        run(dst, "CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        run(src, "CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        while batch := run(src, "CLUSTER GETKEYSINSLOT", slot, 100):
            run(src, "MIGRATE", target[0], target[1], "", 0, 5000, "KEYS", *batch)
        run(dst, "CLUSTER SETSLOT", slot, "NODE", dst_id)
        run(src, "CLUSTER SETSLOT", slot, "NODE", dst_id)
    finally:
        src.close()
        dst.close()


async def test_moving_an_active_users_slot_loses_nothing_and_pushes_continue(
    rig: Callable[[], Awaitable[Rig]],
) -> None:
    r = await rig()
    await r.load.wait_progress(20, within=30, what="before the move")
    moved = r.load.receivers[0].name
    target = r.cluster.shard(1).primary
    assert r.shard.primary is not None and target is not None
    await asyncio.to_thread(move_slot, key_slot(moved.encode()), r.shard.primary, target)
    assert r.cluster.shard_of(f"{{{moved}}}").index == 1
    before = len(r.load.receivers[0].received)
    await r.load.wait_progress(20, within=FAILOVER_WITHIN, what="after the move")
    await asyncio.sleep(2)
    # Live on the new shard: the sweep is an hour away, so pub/sub resubscribed there.
    assert len(r.load.receivers[0].received) >= before + 20
    report = await r.load.finish(within=30)
    assert report.ok, report.describe()
    await check_invariants(r.cluster)
