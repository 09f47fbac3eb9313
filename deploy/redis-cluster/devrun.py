"""`make run-cluster`: a local Redis Cluster plus chat servers in the foreground.

The chat servers run with `--cluster-nodes` (and `--redis-password-file`
when the cluster has a password); starting, supervising and stopping them,
and the banner, are the Sentinel `make run`'s code (run_foreground).
Ctrl-C or SIGTERM stops the servers first (they drain and tell clients to
reconnect), then every node.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from deploy.redis_sentinel.devrun import Opened, run_foreground
from deploy.redis_sentinel.procutil import SetError

from .clusterstate import PASSWORD_FILE, STATE_FILE
from .localcluster import LocalCluster


def server_has_cluster_flag() -> bool:
    """True once the chat server takes --cluster-nodes (server/settings.py)."""
    from server.settings import Settings

    return "cluster_nodes" in {f.name for f in dataclasses.fields(Settings)}


def server_args(cluster: LocalCluster) -> list[str]:
    """The chat server's storage flags for this cluster (DESIGN.md's names)."""
    args = ["--cluster-nodes", cluster.cluster_nodes_arg]
    if cluster.password:
        args += ["--redis-password-file", str(cluster.root / PASSWORD_FILE)]
    return args


def _open_cluster(root: Path, redis_port: int) -> LocalCluster:
    """The cluster in root: a fresh one, or the one a previous run left (data kept)."""
    if (root / STATE_FILE).exists():
        cluster = LocalCluster.load(root)
        if cluster.pids():
            raise SetError(f"a cluster already runs in {root}; stop it with "
                           f"`python -m deploy.redis_cluster.clusterctl stop --dir {root}`")
        print(f"restarting the cluster in {root} (data kept)", flush=True)
        try:
            cluster.start_all()
        except BaseException:
            cluster.stop_all()  # nothing may outlive a failed or interrupted start
            raise
        return cluster
    cluster = LocalCluster(root=root, base_port=redis_port)
    print(f"starting 3 shards x 3 Redis nodes in {root}", flush=True)
    cluster.create()
    return cluster


def run_dev(root: Path, *, server_port: int, redis_port: int, servers: int = 2) -> int:
    root = root.resolve()
    if servers and not server_has_cluster_flag():
        raise SetError("this chat server has no --cluster-nodes flag yet; "
                       "run with --servers 0 for the cluster alone")

    def open_store() -> Opened:
        cluster = _open_cluster(root, redis_port)
        shards = "".join(
            f"    shard {s.index}: slots {s.slot_count:>5} primary {s.primary[0]}:{s.primary[1]}\n"
            for s in cluster.shards() if s.primary)
        flags = server_args(cluster)
        about = (f"  Redis Cluster {len(cluster.nodes)} nodes, data in {root}\n{shards}"
                 f"  server flags  {' '.join(flags)}\n")
        return flags, about, cluster.stop_all

    ports = [server_port + i for i in range(servers)]
    return run_foreground(root, ports, open_store, "deploy.redis_cluster.clusterctl")
