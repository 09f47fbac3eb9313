"""Steady load on two server instances over a real local Redis Cluster, for chaos tests.

`ClusterRig` owns what a cluster chaos test needs: the cluster, two server
instances given --cluster-nodes, two senders and two receivers that cross
the instances (s0 on A sends to a receiver on B, s1 on B to one on A; every
client knows both URLs), and a raw `Probe` that times outages. The test
chooses which slots the receivers' names hash to (a shard it will hurt, or
slots it will move), and the periodic inbox sweep is an hour away, so a
message that arrives after a fault came by the (resubscribed) listener or
the catch-up after it, never by the sweep.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Container
from dataclasses import dataclass

from redis.crc import key_slot

from deploy.redis_cluster.clusterprobes import Shard
from deploy.redis_cluster.localcluster import LocalCluster
from server import invariants
from tests.chaosload import Load, Receiver, Report, Sender, eventually, logged_in
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient
from tests.integration.test_chaos import report
from tests.outage_probe import Probe
from tests.procs import ServerProc

#: Generous bound for one cluster failover (cluster-node-timeout 2 s) on a shared machine.
FAILOVER_WITHIN = 30.0


def names_in(slots: Container[int], prefix: str, count: int) -> list[str]:
    """`count` user names whose slot (hash tag {name}) is in `slots`."""
    names = (f"{prefix}{n}" for n in itertools.count())
    return list(itertools.islice((n for n in names if key_slot(n.encode()) in slots), count))


def slots_of(shard: Shard) -> set[int]:
    return {slot for start, end in shard.slots for slot in range(start, end + 1)}


@dataclass
class ClusterRig:
    cluster: LocalCluster
    servers: tuple[ServerProc, ServerProc]
    load: Load
    probe: Probe

    async def outage_after(self, fault: float, what: str) -> None:
        """Wait until the probe's sends succeed again after `fault`; print the outage."""
        await eventually(lambda: self.probe.outage_since(fault) is not None, FAILOVER_WITHIN,
                         f"the probe's sends succeed again after {what}")
        report(what, self.probe.outage_since(fault))

    async def pushes_flow(self, what: str, more: int = 10) -> None:
        """Every receiver gets `more` messages pushed from now on (the sweep is
        an hour away, so only a live listener can bring them)."""
        targets = [(r, len(r.received) + more) for r in self.load.receivers]
        await eventually(lambda: all(len(r.received) >= n for r, n in targets),
                         FAILOVER_WITHIN, f"{what}: every receiver gets {more} more pushes")

    async def recovered_and_kept_every_ack(self, after: str) -> Report:
        """Sends and live pushes go on `after` the fault; then stop the load
        and check the promise (every acked message once, in order per sender)
        and the invariants on the cluster. The verified report."""
        await self.load.wait_progress(20, FAILOVER_WITHIN, f"sends {after}")
        await self.pushes_flow(after)
        result = await self.load.finish()
        print(f"\n{after}: {result.describe()}", flush=True)
        assert result.ok, result.describe()
        await self.check_invariants()
        return result

    async def check_invariants(self) -> None:
        """Run after load.finish(): the probe stops first, or its next send
        lands between the checker's read of its inbox and of its ledger."""
        await self.probe.close()
        problems = await invariants.check_cluster(self.cluster.cluster_nodes_arg)
        assert problems == [], "\n".join(problems)

    async def close(self) -> None:
        await self.load.close()
        await self.probe.close()


async def start_rig(cluster: LocalCluster, start_server: StartServer, chat_clients: MakeClient,
                    receiver_slots: Container[int], *, sweep_ms: int = 3_600_000) -> ClusterRig:
    """Two instances on `cluster`, the load started and seen to make progress.
    sweep_ms: the servers' inbox sweep; an hour, so pushes come by the listener only."""
    args = ("--cluster-nodes", cluster.cluster_nodes_arg, "--sweep-interval-ms", str(sweep_ms))
    a = await asyncio.to_thread(start_server, *args)
    b = await asyncio.to_thread(start_server, *args)
    r0, r1 = names_in(receiver_slots, "r", 2)
    receivers = [Receiver(await logged_in(chat_clients(b.url, a.url), r0), r0),
                 Receiver(await logged_in(chat_clients(a.url, b.url), r1), r1)]
    senders = [Sender(await logged_in(chat_clients(a.url, b.url), "s0"), "s0", r0),
               Sender(await logged_in(chat_clients(b.url, a.url), "s1"), "s1", r1)]
    # The probe sends to itself: its name sits on the same slots as the receivers'.
    probe = Probe(a.url, names_in(receiver_slots, "probe", 1)[0])
    await probe.start()
    rig = ClusterRig(cluster, (a, b), Load(senders, receivers), probe)
    rig.load.start()
    await rig.load.wait_progress(20, FAILOVER_WITHIN, "load before any fault")
    return rig


async def kill_primary(rig: ClusterRig, shard_index: int) -> tuple[str, float]:
    """SIGKILL the shard's primary now, wait for the cluster to promote a
    replica and for sends to be acked again; ("old -> new", seconds to the
    promotion)."""
    shard = await asyncio.to_thread(rig.cluster.shard, shard_index)
    assert shard.primary is not None
    fault = time.monotonic()
    await asyncio.to_thread(rig.cluster.kill, shard.primary)
    new = await asyncio.to_thread(rig.cluster.wait_for_failover, shard, FAILOVER_WITHIN)
    promoted_after = time.monotonic() - fault
    assert new != shard.primary
    await rig.outage_after(fault, f"SIGKILL of shard {shard_index}'s primary {shard.primary[1]}")
    await rig.load.wait_progress(20, FAILOVER_WITHIN, f"sends after {shard.primary[1]} died")
    await rig.pushes_flow(f"after {shard.primary[1]} died")
    return f"{shard.primary[1]} -> {new[1]}", promoted_after
