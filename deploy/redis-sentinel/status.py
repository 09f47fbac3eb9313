"""Status of a LocalSet as a dict (for code) and as text (for people)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from server.storage.sentinel_majority import majority

if TYPE_CHECKING:
    from .sentinelset import LocalSet


def _addr(host: str, port: int | str) -> str:
    return f"{host}:{port}"


def _pairs(reply: Any) -> dict[str, Any]:
    """SENTINEL replies are flat [k, v, k, v] lists under RESP2."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    return {str(k): v for k, v in zip(reply[::2], reply[1::2], strict=True)}


def _node_status(local: LocalSet, index: int) -> dict[str, Any]:
    node = local.nodes[index]
    entry: dict[str, Any] = {
        "index": index, "address": _addr(node.host, node.port), "pid": node.pid,
        "alive": node.alive(), "role": None, "offset": None, "master": None,
        "link": None, "lag_bytes": None,
    }
    if not entry["alive"]:
        return entry
    try:
        with node.client() as client:
            info = client.info("replication")
    except (redis.RedisError, OSError) as exc:
        entry["error"] = str(exc)
        return entry
    entry["role"] = info.get("role")
    if info.get("role") == "master":
        entry["offset"] = info.get("master_repl_offset")
    else:
        entry["offset"] = info.get("slave_repl_offset")
        entry["master"] = _addr(info.get("master_host", "?"), info.get("master_port", "?"))
        entry["link"] = info.get("master_link_status")
    return entry


def _sentinel_status(local: LocalSet, index: int) -> dict[str, Any]:
    sentinel = local.sentinels[index]
    entry: dict[str, Any] = {
        "index": index, "address": _addr(sentinel.host, sentinel.port), "pid": sentinel.pid,
        "alive": sentinel.alive(), "primary": None, "flags": None,
        "replicas_ok": [], "replicas_down": [], "other_sentinels": 0,
    }
    if not entry["alive"]:
        return entry
    name = local.master_name
    try:
        with sentinel.client() as client:
            master = _pairs(client.execute_command("SENTINEL", "MASTER", name))
            replicas = [_pairs(r) for r in client.execute_command("SENTINEL", "REPLICAS", name)]
    except (redis.RedisError, OSError) as exc:
        entry["error"] = str(exc)
        return entry
    entry["primary"] = _addr(master["ip"], master["port"])
    entry["flags"] = master.get("flags")
    entry["other_sentinels"] = int(master.get("num-other-sentinels", 0))
    for rep in replicas:
        down = "down" in str(rep.get("flags", "")) or "disconnected" in str(rep.get("flags", ""))
        entry["replicas_down" if down else "replicas_ok"].append(_addr(rep["ip"], rep["port"]))
    return entry


def gather_status(local: LocalSet) -> dict[str, Any]:
    nodes = [_node_status(local, i) for i in range(len(local.nodes))]
    sentinels = [_sentinel_status(local, i) for i in range(len(local.sentinels))]
    views = [s["primary"] for s in sentinels]
    primary = majority(views, len(sentinels))
    offsets = {n["address"]: n["offset"] for n in nodes}
    primary_offset = offsets.get(primary) if primary else None
    for node in nodes:
        if node["role"] == "slave" and primary_offset is not None and node["offset"] is not None:
            node["lag_bytes"] = max(0, int(primary_offset) - int(node["offset"]))
    return {
        "root": str(local.root), "master_name": local.master_name, "primary": primary,
        "quorum": local.quorum, "agreeing_sentinels": views.count(primary) if primary else 0,
        "nodes": nodes, "sentinels": sentinels,
    }


def format_status(status: dict[str, Any]) -> str:
    total = len(status["sentinels"])
    primary = status["primary"] or "NONE (no Sentinel majority)"
    lines = [
        f"set {status['master_name']!r} in {status['root']}",
        f"primary: {primary}  ({status['agreeing_sentinels']}/{total} Sentinels agree,"
        f" quorum {status['quorum']})",
        "nodes:",
    ]
    for n in status["nodes"]:
        if not n["alive"]:
            lines.append(f"  node-{n['index']}  {n['address']:<21} DOWN")
            continue
        role = {"master": "primary", "slave": "replica"}.get(str(n["role"]), str(n["role"]))
        extra = ""
        if n["role"] == "slave":
            extra = f"  of {n['master']} link {n['link']} lag {n['lag_bytes']} bytes"
        lines.append(f"  node-{n['index']}  {n['address']:<21} pid {n['pid']:<7} {role:<8}"
                     f" offset {n['offset']}{extra}")
    lines.append("sentinels:")
    for s in status["sentinels"]:
        if not s["alive"]:
            lines.append(f"  sentinel-{s['index']}  {s['address']:<21} DOWN")
            continue
        down = f", down: {', '.join(s['replicas_down'])}" if s["replicas_down"] else ""
        lines.append(
            f"  sentinel-{s['index']}  {s['address']:<21} pid {s['pid']:<7} primary {s['primary']}"
            f" [{s['flags']}] replicas {len(s['replicas_ok'])}{down},"
            f" sees {s['other_sentinels']} other sentinels")
    return "\n".join(lines)
