"""Status of a LocalCluster as a dict (for code) and as text (for people).

Per shard: slot ranges, the primary and its config epoch (it grows with
every failover of that shard), each node's role, link, offset, lag and key
count. `ok` is False while anything keeps the cluster from healthy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from .clusternode import ClusterNode, cluster_info, cluster_nodes

if TYPE_CHECKING:
    from .localcluster import LocalCluster


def _addr(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _ranges(slots: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{s}-{e}" if s != e else str(s) for s, e in slots) or "none"


def _node_status(node: ClusterNode, health: str, node_id: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": node.name, "id": node_id, "address": _addr(node.address), "pid": node.pid,
        "alive": node.alive(), "health": health, "role": None, "link": None,
        "offset": None, "lag_bytes": None, "keys": None, "open_moves": [],
    }
    if not entry["alive"]:
        return entry
    try:
        with node.client() as client:
            repl = client.info("replication")
            entry["keys"] = int(client.dbsize())
    except (redis.RedisError, OSError) as exc:
        entry["error"] = str(exc)
        return entry
    entry["role"] = repl.get("role")
    if repl.get("role") == "master":
        entry["offset"] = repl.get("master_repl_offset")
    else:
        entry["offset"] = repl.get("slave_repl_offset")
        entry["link"] = repl.get("master_link_status")
    mine = [line for line in cluster_nodes(node) or [] if "myself" in line.flags]
    entry["open_moves"] = list(mine[0].migrating) if mine else []
    return entry


def gather_status(cluster: LocalCluster) -> dict[str, Any]:
    problems = cluster.problems()
    live = [n for n in cluster.nodes if n.alive()]
    epochs: dict[tuple[str, int], int] = {}
    ids: dict[tuple[str, int], str] = {}
    current_epoch = None
    if live:
        lines = cluster_nodes(live[0]) or []
        epochs = {line.address: line.config_epoch for line in lines}
        ids = {line.address: line.id for line in lines}
        current_epoch = (cluster_info(live[0]) or {}).get("cluster_current_epoch")
    shards: list[dict[str, Any]] = []
    placed: set[tuple[str, int]] = set()
    for shard in cluster.shards() if live else []:
        health = dict(shard.health)
        nodes = []
        for address in shard.nodes:
            placed.add(address)
            nodes.append(_node_status(cluster.node(address), health.get(address, "?"),
                                      ids.get(address)))
        primary_offset = nodes[0]["offset"] if nodes and nodes[0]["role"] == "master" else None
        for entry in nodes[1:]:
            if primary_offset is not None and entry["offset"] is not None:
                entry["lag_bytes"] = max(0, int(primary_offset) - int(entry["offset"]))
        shards.append({
            "index": shard.index, "id": shard.id, "slots": _ranges(shard.slots),
            "slot_count": shard.slot_count,
            "primary": _addr(shard.primary) if shard.primary else None,
            "config_epoch": epochs.get(shard.primary) if shard.primary else None,
            "nodes": nodes,
        })
    unplaced = [_node_status(n, "unknown", ids.get(n.address))
                for n in cluster.nodes if n.address not in placed]
    # A dead node leaves cluster_state ok (its shard failed over) but one
    # fault closer to loss: status says so and is not ok.
    problems += [f"{n.name} ({n.host}:{n.port}) is down" for n in cluster.nodes if not n.alive()]
    return {
        "root": str(cluster.root), "ok": not problems, "problems": problems,
        "current_epoch": current_epoch, "shards": shards, "other_nodes": unplaced,
    }


def _node_line(n: dict[str, Any], role_hint: str) -> str:
    # A local node has a folder name; a remote one is known by its address.
    label = n["address"] if n["name"] == n["address"] else f"{n['name']:<8} {n['address']}"
    if not n["alive"]:
        return (f"    {label:<30} DOWN ({n['health']} per the cluster)"
                f" id {n['id']}")
    role = {"master": "primary", "slave": "replica"}.get(str(n["role"]), str(n["role"]))
    extra = f"  link {n['link']} lag {n['lag_bytes']} bytes" if n["role"] == "slave" else ""
    moves = f"  OPEN MOVES {' '.join(n['open_moves'])}" if n["open_moves"] else ""
    mismatch = "" if role == role_hint else f" (cluster says {role_hint})"
    return (f"    {label:<30} pid {n['pid']!s:<7} {role:<8}{mismatch}"
            f" keys {n['keys']} offset {n['offset']}{extra}{moves}")


def format_status(status: dict[str, Any]) -> str:
    verdict = "ok" if status["ok"] else "NOT OK: " + "; ".join(status["problems"][:5])
    lines = [f"cluster in {status['root']}: {verdict}",
             f"current epoch {status['current_epoch']}"]
    for shard in status["shards"]:
        lines.append(
            f"  shard {shard['index']} ({shard['id'][:8]}) slots {shard['slots']}"
            f" ({shard['slot_count']}) primary {shard['primary']}"
            f" config epoch {shard['config_epoch']}")
        for i, node in enumerate(shard["nodes"]):
            lines.append(_node_line(node, "primary" if i == 0 else "replica"))
    if status["other_nodes"]:
        lines.append("  nodes no shard lists:")
        lines.extend(_node_line(n, "?") for n in status["other_nodes"])
    return "\n".join(lines)
