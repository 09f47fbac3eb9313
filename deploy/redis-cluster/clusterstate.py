"""ROOT/cluster.json: what a LocalCluster started, so another process can manage it.

It records ports, pids, folders and the shards' ids in creation order (the
shard numbers the CLI and tests use), never the password: that stays in
ROOT/password (mode 0600) next to the config files that hold it anyway.
Roles and slots are not recorded: each node's nodes.conf is the truth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.redis_sentinel.procutil import SetError

from .clusternode import ClusterNode

if TYPE_CHECKING:
    from .localcluster import LocalCluster

VERSION = 1
STATE_FILE = "cluster.json"
PASSWORD_FILE = "password"


def _entry(node: ClusterNode) -> dict[str, Any]:
    return {"host": node.host, "port": node.port, "dir": str(node.datadir),
            "pid": node.pid if node.alive() else None}


def save(cluster: LocalCluster) -> None:
    state = {
        "version": VERSION,
        "config": {
            "shards": cluster.shard_count, "replicas": cluster.replicas,
            "host": cluster.host, "node_timeout_ms": cluster.node_timeout_ms,
        },
        "shard_ids": cluster.shard_ids,
        "nodes": [_entry(n) for n in cluster.nodes],
    }
    cluster.root.mkdir(parents=True, exist_ok=True)
    tmp = cluster.state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, cluster.state_path)  # readers never see half a file


def write_password(root: Path, password: str) -> None:
    path = root / PASSWORD_FILE
    path.write_text(password)
    path.chmod(0o600)


def _read(root: Path) -> dict[str, Any]:
    path = root / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SetError(f"no cluster under {root} (no {STATE_FILE}); start one first") from None
    except (OSError, ValueError) as exc:
        raise SetError(f"cannot read {path}: {exc}") from None
    if state.get("version") != VERSION:
        raise SetError(f"{path} has an unknown version {state.get('version')!r}")
    return state


def _node(entry: dict[str, Any], cluster: LocalCluster) -> ClusterNode:
    node = ClusterNode(datadir=Path(entry["dir"]), host=entry["host"], port=entry["port"],
                       password=cluster.password, node_timeout_ms=cluster.node_timeout_ms)
    node.pid = entry.get("pid")
    return node


def load(cls: type[LocalCluster], root: Path) -> LocalCluster:
    state = _read(root)
    config = state["config"]
    pw_path = root / PASSWORD_FILE
    password = pw_path.read_text().strip() if pw_path.exists() else None
    cluster = cls(root=root, shards=config["shards"], replicas=config["replicas"],
                  host=config["host"], node_timeout_ms=config["node_timeout_ms"],
                  password=password, ports=[e["port"] for e in state["nodes"]])
    cluster.nodes = [_node(e, cluster) for e in state["nodes"]]
    cluster.shard_ids = list(state.get("shard_ids", []))
    return cluster


def adopt(cluster: LocalCluster) -> None:
    """Take over nodes and pids another process recorded for this cluster (a
    shard the CLI added while `make run-cluster` holds it), so the holder's
    stop_all() stops those too. Our own live processes stay as they are."""
    try:
        state = _read(cluster.root)
    except SetError:
        return
    entries = state.get("nodes", [])
    for entry in entries[len(cluster.nodes):]:
        cluster.nodes.append(_node(entry, cluster))
    for node, entry in zip(cluster.nodes, entries, strict=False):
        pid = entry.get("pid")
        if pid and pid != node.pid and not node.alive():
            node.pid = pid
            node.proc = None
    for shard_id in state.get("shard_ids", []):
        if shard_id not in cluster.shard_ids:
            cluster.shard_ids.append(shard_id)
