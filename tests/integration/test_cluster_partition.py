"""A shard primary cut off by a partition acks nothing; after the heal nothing
acked is lost.

Three "hosts" are network namespaces on a bridge (tests/integration/netns_hosts.py);
each runs one node of every shard, and shard s has its primary on host s,
its replicas on the two other hosts, as a multi-host install would place
them. The cut blackholes the routes between host 0 and the other hosts
(not the root namespace), so host 0's primary of shard 0 loses both its
replicas, and the majority side (two of three primaries) promotes one of
them. The two server instances run in the root namespace and still reach
the cut-off primary: its WAIT can never complete, so the servers must not
ack a write there, and they follow the majority to the new primary.

Checked: sends go on during the cut; every entry the cut-off primary took
during the cut (it is thrown away when it rejoins) was never acked; after
the heal every acked message arrived once, in order, and the invariants
hold. Needs root and `ip netns`; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.redis_cluster import formation
from deploy.redis_cluster.clusternode import ClusterNode, cluster_shards
from deploy.redis_cluster.localcluster import LocalCluster
from server import keys
from tests.chaosload import eventually
from tests.clusterload import FAILOVER_WITHIN, ClusterRig, start_rig
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient
from tests.integration.netns_hosts import HOSTS, HostProcess, Net, skip_without_netns

pytestmark = pytest.mark.slow

BASE_PORT = 7100


class ClusterHosts:
    """Node (shard s, host h) listens on host h's IP, port BASE_PORT + s."""

    def __init__(self, net: Net, root: Path) -> None:
        self.net = net
        #: Shard by shard, primary first: what formation.form expects.
        self.nodes = [ClusterNode(datadir=root / f"s{s}h{h}", host=net.ip(h), port=BASE_PORT + s)
                      for s in range(HOSTS) for h in (s, *(x for x in range(HOSTS) if x != s))]
        self.procs: list[HostProcess] = []

    def start(self) -> LocalCluster:
        """Start and form the cluster; a handle on it (status, shards, health)."""
        for node in self.nodes:
            node.write_config()
            host = next(h for h in range(HOSTS) if self.net.ip(h) == node.host)
            proc = HostProcess(node, self.net.exec_prefix(host))
            self.procs.append(proc)
            proc.start()
        formation.form(self.nodes, replicas=HOSTS - 1, timeout=60)
        handle = LocalCluster.attach([n.address for n in self.nodes], root=self.nodes[0].datadir)
        handle.wait_healthy(60)
        return handle

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def primary_of_slot_0_per(self, host: int) -> set[tuple[str, int] | None]:
        """The online primary of shard 0 as each node on `host` sees it."""
        seen: set[tuple[str, int] | None] = set()
        for node in self.nodes:
            if node.host != self.net.ip(host):
                continue
            entry = next((e for e in cluster_shards(node) or []
                          if any(low == 0 for low, _ in e["slots"])), None)
            nodes = entry["nodes"] if entry else []
            seen.add(next(((n.get("ip") or n.get("endpoint"), int(n["port"])) for n in nodes
                           if n.get("role") == "master" and n.get("health") == "online"), None))
        return seen


@pytest.fixture
def net() -> Iterator[Net]:
    skip_without_netns()
    made = Net(tag=(os.getpid() + 100) % 200 + 20)
    made.down()  # leftovers of an earlier run that was killed
    try:
        made.up()
        yield made
    finally:
        made.heal()
        made.down()


def taken_during_cut(node: ClusterNode, names: list[str], since_ms: int) -> set[tuple[str, str]]:
    """(sender, msg_id) of every inbox entry `node` stored at or after since_ms."""
    found: set[tuple[str, str]] = set()
    with node.client() as client:
        # A node of a failed cluster refuses reads too: allowed for this look only.
        client.config_set("cluster-allow-reads-when-down", "yes")
        try:
            for name in names:
                entries = client.xrange(keys.inbox(name), min=f"{since_ms}-0")
                found |= {(fields["from"], fields["msg_id"]) for _, fields in entries}
        finally:
            client.config_set("cluster-allow-reads-when-down", "no")
    return found


async def test_a_shard_primary_cut_off_by_a_partition_acks_nothing_and_loses_nothing(
    net: Net, tmp_path: Path, start_server: StartServer, chat_clients: MakeClient,
) -> None:
    hosts = ClusterHosts(net, tmp_path / "hosts")
    rig: ClusterRig | None = None
    try:
        cluster = await asyncio.to_thread(hosts.start)
        shard0 = await asyncio.to_thread(cluster.shard, 0)
        old = hosts.nodes[0]
        assert shard0.primary == old.address
        slots = {slot for low, high in shard0.slots for slot in range(low, high + 1)}
        rig = await start_rig(cluster, start_server, chat_clients, slots)
        names = [r.name for r in rig.load.receivers] + [rig.probe.name]

        fault = time.monotonic()
        await asyncio.to_thread(net.cut, 0)
        # From here on nothing the old primary stores can reach a replica.
        cut_ms = int(time.time() * 1000)

        def failed_over() -> bool:
            views = hosts.primary_of_slot_0_per(1) | hosts.primary_of_slot_0_per(2)
            return len(views) == 1 and views.pop() not in (None, old.address)

        await eventually(failed_over, FAILOVER_WITHIN, "hosts 1 and 2 promote a replica")
        await rig.outage_after(fault, "shard 0's primary cut off by a partition")
        await rig.load.wait_progress(20, FAILOVER_WITHIN, "sends during the cut")
        await rig.pushes_flow("during the cut")
        # Still the primary in its own view, reachable from the servers: what
        # it took since the cut never reached a replica, so none may be acked.
        stranded = await asyncio.to_thread(taken_during_cut, old, names, cut_ms)
        acked = {s.key for sender in rig.load.senders for s in sender.acked}
        # A send the old primary took, answered `unavailable`, may be retried
        # with the same msg_id and acked by the new primary: then its acked
        # copy is on the majority side. An ack that rests only on the cut-off
        # primary's copy is what must never happen.
        new_primary = next(node for node in hosts.nodes
                           if node.address in hosts.primary_of_slot_0_per(1))
        kept = await asyncio.to_thread(taken_during_cut, new_primary, names, cut_ms)
        print(f"\ncut-off primary took {len(stranded)} writes during the cut; "
              f"acked among them: {len(stranded & acked)}, each also on the new primary: "
              f"{len(stranded & acked & kept)}", flush=True)
        assert not (stranded & acked) - kept

        await asyncio.to_thread(net.heal)
        await asyncio.to_thread(cluster.wait_healthy, FAILOVER_WITHIN * 2)
        await rig.recovered_and_kept_every_ack("after the heal")
    finally:
        if rig is not None:
            await rig.close()
        await asyncio.to_thread(hosts.stop)
