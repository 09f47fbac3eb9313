"""`make run-cluster`: a local Redis Cluster plus chat servers in the foreground.

The chat servers run with `--cluster-nodes` (and `--redis-password-file`
when the cluster has a password); starting, supervising and stopping them is
the Sentinel `make run`'s code. Ctrl-C or SIGTERM stops the servers first
(they drain and tell clients to reconnect), then every node.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from pathlib import Path

from deploy.redis_sentinel.devrun import (
    HOST,
    check_free,
    client_python,
    start_server,
    stop_servers,
    supervise,
    wait_listening,
)
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
        cluster.start_all()
        return cluster
    cluster = LocalCluster(root=root, base_port=redis_port)
    print(f"starting 3 shards x 3 Redis nodes in {root}", flush=True)
    cluster.create()
    return cluster


def run_dev(root: Path, *, server_port: int, redis_port: int, servers: int = 2) -> int:
    root = root.resolve()
    ports = [server_port + i for i in range(servers)]
    check_free(ports)
    if ports and not server_has_cluster_flag():
        raise SetError("this chat server has no --cluster-nodes flag yet; "
                       "run with --servers 0 for the cluster alone")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cluster: LocalCluster | None = None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        cluster = _open_cluster(root, redis_port)
        store_args = server_args(cluster)

        def restart(i: int) -> subprocess.Popen[bytes]:
            return start_server(i, ports[i], root, ports, store_args)

        procs.extend(restart(i) for i in range(len(ports)))
        for i, (proc, port) in enumerate(zip(procs, ports, strict=True)):
            wait_listening(proc, port, root / f"server-{i}.log")
        urls = "  ".join(f"ws://{HOST}:{p}/ws" for p in ports) or "(none started)"
        page = f"  web client:   open http://{HOST}:{ports[0]}/ in a browser\n" if ports else ""
        shards = "\n".join(
            f"    shard {s.index}: slots {s.slot_count:>5} primary {s.primary[0]}:{s.primary[1]}"
            for s in cluster.shards() if s.primary)
        print(
            f"\nchat is up (pid {os.getpid()}).\n"
            f"  Redis Cluster {len(cluster.nodes)} nodes, data in {root}\n{shards}\n"
            f"  servers       {urls}   logs in {root}/server-N.log\n"
            f"  server flags  {' '.join(store_args)}\n"
            f"{page}"
            f"  connect:      {client_python()} -m client"
            + "".join(f" --url ws://{HOST}:{p}/ws" for p in ports) + "\n"
            f"  status:       {client_python()} -m deploy.redis_cluster.clusterctl status"
            f" --dir {root}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        return supervise(procs, ports, root, restart)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        # Ignore a second Ctrl-C: half-stopped processes are worse than a wait.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_servers(procs)
        if cluster is not None:
            cluster.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
