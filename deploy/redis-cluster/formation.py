"""Forming a cluster out of running, empty nodes, with CLUSTER commands only.

The same steps serve the local cluster and a multi-host install (nodes
started by systemd): distinct config epochs and an even slot split on the
primaries, CLUSTER MEET, then CLUSTER REPLICATE on the replicas.
"""

from __future__ import annotations

from deploy.redis_sentinel.probes import wait_until
from deploy.redis_sentinel.procutil import SetError

from .clusternode import ClusterNode, cluster_nodes, even_ranges


def join(nodes: list[ClusterNode], *, via: ClusterNode, timeout: float) -> None:
    """CLUSTER MEET each node from `via`; wait until `via` and they know each other."""
    with via.client() as client:
        for node in nodes:
            client.execute_command("CLUSTER", "MEET", node.host, node.port)

    def met() -> bool:
        for node in (via, *nodes):
            lines = cluster_nodes(node)
            known = {line.address for line in lines or [] if "handshake" not in line.flags}
            if lines is None or not {via.address, *(n.address for n in nodes)} <= known:
                return False
        return True

    wait_until(met, timeout, "the nodes did not meet")


def replicate(replica: ClusterNode, primary: ClusterNode) -> None:
    """Make `replica` (known to the cluster, holding no slots) a replica of `primary`."""
    with primary.client() as client:
        primary_id = str(client.execute_command("CLUSTER", "MYID"))
    with replica.client() as client:
        client.execute_command("CLUSTER", "REPLICATE", primary_id)


def form(nodes: list[ClusterNode], *, replicas: int, timeout: float) -> list[ClusterNode]:
    """Form a cluster of `nodes`, listed shard by shard with the primary
    first; returns the primaries. The caller waits until it is healthy."""
    per_shard = replicas + 1
    if not nodes or len(nodes) % per_shard:
        raise SetError(f"{len(nodes)} nodes do not make shards of {per_shard} nodes")
    for node in nodes:
        lines = cluster_nodes(node)
        if lines is None:
            raise SetError(f"{node.host}:{node.port} does not answer (cluster-enabled yes?)")
        if len(lines) > 1 or any(line.slots for line in lines):
            raise SetError(f"{node.host}:{node.port} already belongs to a cluster")
    primaries = nodes[::per_shard]
    for epoch, (primary, (first, last)) in enumerate(
            zip(primaries, even_ranges(len(primaries)), strict=True), start=1):
        with primary.client() as client:
            # Distinct epochs up front, as redis-cli does: no collision
            # round before the slot owners are settled.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
    join(nodes[1:], via=nodes[0], timeout=timeout)
    for s, primary in enumerate(primaries):
        for replica in nodes[s * per_shard + 1:(s + 1) * per_shard]:
            replicate(replica, primary)
    return primaries


def forget(nodes: list[ClusterNode], dead_id: str) -> int:
    """CLUSTER FORGET dead_id on every answering node but the dead one;
    returns how many forgot it. All must within 60 s, or gossip from one
    that still knows it brings it back: so one quick pass over all."""
    told = 0
    for node in nodes:
        lines = cluster_nodes(node)
        me = next((line for line in lines or [] if "myself" in line.flags), None)
        if me is None or me.id == dead_id:
            continue
        with node.client() as client:
            client.execute_command("CLUSTER", "FORGET", dead_id)
        told += 1
    return told


def promote(replica: ClusterNode, timeout: float) -> None:
    """CLUSTER FAILOVER on `replica`: a planned, lossless switch (the primary
    stops writes, the replica catches up, then takes over); returns once it
    reports itself primary."""
    with replica.client() as client:
        client.execute_command("CLUSTER", "FAILOVER")

    def promoted() -> bool:
        mine = [line for line in cluster_nodes(replica) or [] if "myself" in line.flags]
        return bool(mine) and mine[0].is_primary

    wait_until(promoted, timeout, f"{replica.host}:{replica.port} did not take over")
