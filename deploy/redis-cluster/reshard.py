"""add-shard: start a new primary and replicas, join them, move slots onto them.

The plan (the new nodes, then the exact slots to move) is written to
ROOT/add-shard.json before anything it names happens and removed when the
last slot has moved, so running add-shard again after an interruption
resumes the same plan: nodes started and joined again if need be, a slot
left IMPORTING/MIGRATING finished first, then the slots not yet moved.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deploy.redis_sentinel.procutil import SetError

from . import formation
from .clusternode import SLOTS, ClusterNode, replication_info
from .clusterprobes import Shard
from .slotmove import SLOTS_PER_STEP, SlotMover, node_ids, open_slots

if TYPE_CHECKING:
    from .localcluster import LocalCluster

PLAN_FILE = "add-shard.json"
Progress = Callable[[int, int, int], None]  # (slots done, slots planned, keys moved)


def _plan_path(cluster: LocalCluster) -> Any:
    return cluster.root / PLAN_FILE


def _save_plan(cluster: LocalCluster, plan: dict[str, Any]) -> None:
    tmp = _plan_path(cluster).with_suffix(".tmp")
    tmp.write_text(json.dumps(plan) + "\n")
    os.replace(tmp, _plan_path(cluster))


def slots_to_take(shards: list[Shard], count: int) -> list[int]:
    """`count` slots from the shards in proportion to what each holds (largest
    remainder), each shard giving the top of its ranges."""
    holders = [s for s in shards if s.slot_count]
    total = sum(s.slot_count for s in holders)
    if not 0 < count < total:
        raise SetError(f"can move 1..{total - 1} slots, not {count}")
    exact = [count * s.slot_count / total for s in holders]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(holders)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[:count - sum(shares)]:
        shares[i] += 1
    taken: list[int] = []
    for shard, share in zip(holders, shares, strict=True):
        owned = [slot for start, end in shard.slots for slot in range(start, end + 1)]
        taken += owned[len(owned) - share:] if share else []
    return sorted(taken)


def _addr(node: ClusterNode) -> str:
    return f"{node.host}:{node.port}"


def _start_nodes(cluster: LocalCluster, plan: dict[str, Any], timeout: float) -> ClusterNode:
    """Start and join the plan's nodes; returns the new shard's primary."""
    by_address = {_addr(n): n for n in cluster.nodes}
    missing = [a for a in plan["nodes"] if a not in by_address]
    if missing:
        raise SetError(f"the plan's new nodes {missing} are not part of this cluster handle")
    nodes = [by_address[a] for a in plan["nodes"]]
    for node in nodes:
        node.start(timeout)
        cluster.save()
    via = next((n for n in cluster.nodes if n.alive() and n not in nodes), None)
    if via is None:
        raise SetError("no live node of the cluster to join the new shard through")
    formation.join(nodes, via=via, timeout=timeout)
    roles = [(replication_info(n) or {}).get("role") for n in nodes]
    # A resumed plan may find the shard formed (and even failed over): keep it.
    primary = nodes[0] if "slave" not in roles else nodes[roles.index("master")]
    for node, role in zip(nodes, roles, strict=True):
        if node is not primary and role == "master":
            formation.replicate(node, primary)
    cluster.wait_healthy(timeout)
    return primary


def _finish_open_slots(cluster: LocalCluster, primaries: list[ClusterNode]) -> None:
    ids = node_ids(primaries)
    for slot, target_id in sorted(open_slots(primaries).items()):
        target = ids.get(target_id)
        if target is None:
            raise SetError(f"slot {slot} is half-moved to {target_id}, not a live primary")
        mover = SlotMover(target, primaries)
        try:
            mover.move([slot])
        finally:
            mover.close()


def add_shard(
    cluster: LocalCluster, *, slots: int | None = None, fraction: float | None = None,
    replicas: int | None = None, new_nodes: list[ClusterNode] | None = None,
    progress: Progress | None = None, timeout: float = 60.0,
) -> Shard:
    """Add a shard (or resume an interrupted add) and move slots onto it.
    slots/fraction: how many of the 16384 (default an even share).
    new_nodes: nodes already running elsewhere (multi-host), primary first,
    in cluster.nodes; by default new local nodes are started (1 + replicas)."""
    path = _plan_path(cluster)
    plan: dict[str, Any]
    if path.exists():
        plan = json.loads(path.read_text())
    else:
        count = (slots if slots is not None
                 else round(SLOTS * fraction) if fraction is not None
                 else SLOTS // (len(cluster.shards()) + 1))
        if new_nodes is None:
            new_nodes = []
            for _ in range(1 + (cluster.replicas if replicas is None else replicas)):
                node = cluster.new_node()
                node.write_config()
                cluster.nodes.append(node)
                new_nodes.append(node)
        plan = {"nodes": [_addr(n) for n in new_nodes], "count": count, "slots": None}
        _save_plan(cluster, plan)
        cluster.save()
    target = _start_nodes(cluster, plan, timeout)
    primaries = [n for n in cluster.nodes if n.alive()
                 and (replication_info(n) or {}).get("role") == "master"]
    _finish_open_slots(cluster, primaries)
    if plan["slots"] is None:
        target_shard = cluster.shard_of_node(target)
        others = [s for s in cluster.shards() if s.id != target_shard.id]
        plan["slots"] = slots_to_take(others, plan["count"])
        _save_plan(cluster, plan)
    mover = SlotMover(target, primaries)
    keys, planned = 0, plan["slots"]
    try:
        for start in range(0, len(planned), SLOTS_PER_STEP):
            group = planned[start:start + SLOTS_PER_STEP]
            keys += mover.move(group)
            if progress is not None:
                progress(start + len(group), len(planned), keys)
    finally:
        mover.close()
    cluster.wait_healthy(timeout)
    path.unlink()
    return cluster.shard_of_node(target)


def add_reshard_arguments(parser: argparse.ArgumentParser) -> None:
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--slots", type=int, help="slots to move onto the new shard")
    how.add_argument("--fraction", type=float,
                     help="share of all slots to move, e.g. 0.25 (default: an even share)")
    parser.add_argument("--replicas", type=int, default=None,
                        help="replicas of the new primary (default: as the other shards)")


def add_shard_cli(cluster: LocalCluster, args: argparse.Namespace,
                  new_nodes: list[ClusterNode] | None) -> int:
    if _plan_path(cluster).exists():
        print(f"resuming the add-shard recorded in {_plan_path(cluster)}", flush=True)
    last = [0.0]

    def show(done: int, total: int, keys: int) -> None:
        if done == total or time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            print(f"moved {done}/{total} slots ({100 * done // total}%), {keys} keys",
                  flush=True)

    shard = add_shard(cluster, slots=args.slots, fraction=args.fraction,
                      replicas=args.replicas, new_nodes=new_nodes, progress=show,
                      timeout=args.timeout)
    print(f"shard {shard.index} at {shard.primary} owns {shard.slot_count} slots")
    print(cluster.status_text())
    return 0
