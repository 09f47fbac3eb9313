"""Read-only checks of a LocalCluster's nodes: health, the shards, a failover.

Each check asks the live nodes and treats an unreachable one as "not yet",
because the callers poll them while nodes die, restart and rejoin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deploy.redis_sentinel.probes import wait_until
from deploy.redis_sentinel.procutil import SetError

from .clusternode import (
    SLOTS,
    Address,
    ClusterNode,
    cluster_info,
    cluster_shards,
    node_view,
    replication_info,
    slot_map,
)

if TYPE_CHECKING:
    from .localcluster import LocalCluster


@dataclass(frozen=True)
class Shard:
    """One shard as CLUSTER SHARDS names it. index: creation order (stable
    across failovers and restarts); primary: the online node in the primary
    role, else the node in that role (down, before a failover); replicas:
    the shard's other nodes, an old primary still down after a failover
    included."""

    index: int
    id: str
    primary: Address | None
    replicas: tuple[Address, ...]
    slots: tuple[tuple[int, int], ...]
    health: tuple[tuple[Address, str], ...]  # (node, "online" | "failed" | "loading")

    @property
    def nodes(self) -> tuple[Address, ...]:
        return ((self.primary,) if self.primary else ()) + self.replicas

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)


def live_nodes(cluster: LocalCluster) -> list[ClusterNode]:
    return [n for n in cluster.nodes if n.alive()]


def shards(cluster: LocalCluster) -> list[Shard]:
    """The shards as the first live node with cluster_state ok sees them (any
    live node if none is ok), ordered by cluster.shard_ids; shards the handle
    has not seen before are appended to shard_ids."""
    reply = None
    for node in live_nodes(cluster):
        answer = cluster_shards(node)
        reply = reply or answer
        if answer is not None and (cluster_info(node) or {}).get("cluster_state") == "ok":
            reply = answer
            break
    if reply is not None:
        for entry in reply:
            if entry["id"] not in cluster.shard_ids:
                cluster.shard_ids.append(entry["id"])
        by_id = {entry["id"]: entry for entry in reply}
        return [_shard(i, by_id[sid]) for i, sid in enumerate(cluster.shard_ids)
                if sid in by_id]
    raise SetError("no live node answers CLUSTER SHARDS")


def _shard(index: int, entry: dict[str, Any]) -> Shard:
    members = [((str(n.get("ip") or n.get("endpoint")), int(n["port"])),
                str(n.get("role")), str(n.get("health", "?"))) for n in entry["nodes"]]
    # After a failover the old primary, while down, is still listed with the
    # role master: the primary is the master that is online, if one is.
    masters = sorted((m for m in members if m[1] == "master"), key=lambda m: m[2] != "online")
    primary = masters[0][0] if masters else None
    return Shard(index=index, id=str(entry["id"]), primary=primary,
                 replicas=tuple(a for a, _, _ in members if a != primary),
                 slots=tuple(entry["slots"]), health=tuple((a, h) for a, _, h in members))


def problems(cluster: LocalCluster) -> list[str]:
    """What keeps the cluster from healthy, [] when healthy: every live node
    says cluster_state ok, knows every live node and none of them as
    failing, all agree on one slot map covering all 16384 slots, and every
    live replica's link to its primary is up."""
    live = live_nodes(cluster)
    if not live:
        return ["no node runs"]
    found: list[str] = []
    maps = []
    live_addresses = {n.address for n in live}
    for node in live:
        where = f"{node.host}:{node.port}"
        view = node_view(node)
        if view is None:
            found.append(f"{where} does not answer")
            continue
        info, lines, repl = view.info, view.lines, view.replication
        if info.get("cluster_state") != "ok":
            found.append(f"{where} says cluster_state:{info.get('cluster_state')}")
        known = {line.address: line for line in lines}
        missing = live_addresses - set(known)
        if missing:
            found.append(f"{where} does not know {sorted(missing)}")
        failing = sorted(a for a, line in known.items() if a in live_addresses and line.failing)
        if failing:
            found.append(f"{where} flags {failing} as failing")
        if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
            found.append(f"{where} replica link {repl.get('master_link_status')}")
        maps.append(slot_map(lines))
    # A replica still loading the primary's snapshot is linked but not yet a copy.
    for shard in shards(cluster) if not found else []:
        loading = [a for a, health in shard.health if a in live_addresses and health != "online"]
        if loading:
            found.append(f"shard {shard.index}: {sorted(loading)} not online yet")
    if maps and any(m != maps[0] for m in maps[1:]):
        found.append("nodes disagree on the slot map")
    if maps and sum(e - s + 1 for s, e in maps[0]) != SLOTS:
        found.append("not every slot has a primary")
    return found


def wait_for_failover(cluster: LocalCluster, shard: Shard, timeout: float) -> Address:
    """Wait until every live node names, for this shard, an online primary
    other than shard.primary, that node acts as primary (INFO role master)
    and says cluster_state ok; return its address."""
    found: list[Address] = []

    def done() -> bool:
        views: set[Address | None] = set()
        for node in live_nodes(cluster):
            reply = cluster_shards(node)
            entry = next((e for e in reply or [] if e["id"] == shard.id), None)
            if entry is None:
                return False
            now = _shard(shard.index, entry)
            online = dict(now.health).get(now.primary) if now.primary else None
            views.add(now.primary if online == "online" else None)
        new = views.pop() if len(views) == 1 else None
        if new is None or new == shard.primary:
            return False
        node = cluster.node(new)
        repl, info = replication_info(node), cluster_info(node)
        if repl is None or info is None or repl.get("role") != "master":
            return False
        if info.get("cluster_state") != "ok":
            return False
        found.append(new)
        return True

    old = f"{shard.primary[0]}:{shard.primary[1]}" if shard.primary else "no primary"
    wait_until(done, timeout, f"shard {shard.index} did not fail over away from {old}")
    return found[-1]
