"""Render configs for a multi-host Redis Cluster: shards spread over hosts.

Shard s's node k (k=0 the first primary) runs on host (s + k) mod H at port
base_port + s, so no host holds two nodes of one shard (that needs H >=
replicas + 1) and the primaries start on different hosts. OUT/<host>/ gets
redis-<port>.conf per node there, the units chat-redis-cluster@.service
(one instance per port) and chat-server@.service (the Sentinel set's
template with --cluster-nodes); OUT/create.sh is the one command that forms
the cluster once every node runs; OUT/shards.txt lists each shard's nodes,
primary first (the --new-nodes of an add-shard after rendering one shard more).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path

from deploy.redis_sentinel.procutil import SetError, read_password_file
from deploy.redis_sentinel.render import PASSWORD_PATH, fill, is_ip, split_hosts

from .clusternode import BUS_OFFSET

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True, kw_only=True)
class ClusterRenderConfig:
    hosts: list[str]
    shards: int = 3
    replicas: int = 2
    base_port: int = 7000
    node_timeout_ms: int = 5000
    password: str | None = None
    redis_bin: str = "/usr/bin/redis-server"
    app_dir: str = "/opt/chat"
    state_dir: str = "/var/lib/chat"
    user: str = "chat"

    def placement(self) -> list[list[tuple[str, int]]]:
        """Per shard, its nodes (host, port), the first primary first."""
        count = len(self.hosts)
        return [[(self.hosts[(s + k) % count], self.base_port + s)
                 for k in range(self.replicas + 1)] for s in range(self.shards)]

    @property
    def cluster_nodes_arg(self) -> str:
        return ",".join(f"{h}:{p}" for shard in self.placement() for h, p in shard)


def _check(config: ClusterRenderConfig) -> None:
    if len(set(config.hosts)) != len(config.hosts) or not config.hosts:
        raise SetError("--hosts needs one or more distinct hosts")
    if len(config.hosts) < config.replicas + 1:
        # Two nodes of one shard on one host fall together.
        raise SetError(f"{config.replicas + 1} nodes per shard need at least "
                       f"{config.replicas + 1} hosts (got {len(config.hosts)})")
    if config.shards < 1 or config.base_port + config.shards - 1 + BUS_OFFSET > 65535:
        raise SetError("need one or more shards, and ports (+10000 for the bus) below 65536")


def _node_conf(config: ClusterRenderConfig, host: str, port: int, shard: int) -> str:
    announce = (f"cluster-announce-ip {host}" if is_ip(host) else
                # Clients get the name, not an address they may not route to.
                f"cluster-announce-hostname {host}\ncluster-preferred-endpoint-type hostname")
    auth = (f'requirepass "{config.password}"\nmasterauth "{config.password}"\n'
            if config.password else "")
    return fill("redis-cluster.conf", {
        "host": host, "port": port, "bus_port": port + BUS_OFFSET, "shard": shard,
        "bind": f"{host} 127.0.0.1" if is_ip(host) else "* -::*",
        "state_dir": config.state_dir, "node_timeout_ms": config.node_timeout_ms,
        "announce": announce, "auth": auth,
    }, TEMPLATES)


def create_command(config: ClusterRenderConfig) -> str:
    password = f" --password-file {PASSWORD_PATH}" if config.password else ""
    return (f"cd {shlex.quote(config.app_dir)} && .venv/bin/python -m "
            f"deploy.redis_cluster.clusterctl create --nodes {config.cluster_nodes_arg}"
            f" --replicas {config.replicas}{password}")


def render(config: ClusterRenderConfig, out: Path) -> list[Path]:
    """Write every host's files under out/<host>/ and out/create.sh."""
    _check(config)
    written: list[Path] = []
    per_host: dict[str, dict[str, str]] = {h: {} for h in config.hosts}
    for shard, nodes in enumerate(config.placement()):
        for host, port in nodes:
            per_host[host][f"redis-{port}.conf"] = _node_conf(config, host, port, shard)
    server_pw = f" --redis-password-file {PASSWORD_PATH}" if config.password else ""
    for host, files in per_host.items():
        values: dict[str, object] = {
            "host": host, "user": config.user, "app_dir": config.app_dir,
            "state_dir": config.state_dir, "redis_bin": config.redis_bin,
            "server_bind": "0.0.0.0", "server_password": server_pw,
            "store_args": f"--cluster-nodes {config.cluster_nodes_arg}",
        }
        files["chat-redis-cluster@.service"] = fill("chat-redis-cluster@.service", values,
                                                    TEMPLATES)
        files["chat-server@.service"] = fill("chat-server@.service", values)
        folder = out / host
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = folder / name
            path.write_text(text)
            if name.endswith(".conf"):
                path.chmod(0o600)  # may hold the password
            written.append(path)
    shards = out / "shards.txt"
    shards.write_text("".join(
        f"shard {i}: " + ",".join(f"{h}:{p}" for h, p in nodes) + "\n"
        for i, nodes in enumerate(config.placement())))
    written.append(shards)
    script = out / "create.sh"
    script.write_text("#!/bin/sh\n# Once every node runs (systemctl start chat-redis-cluster@PORT"
                      " on each host), on one host:\nset -e\n" + create_command(config) + "\n")
    script.chmod(0o755)
    written.append(script)
    return written


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", required=True,
                        help="hosts h1,h2,h3 (at least replicas + 1); IPs or DNS names")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per host)")
    parser.add_argument("--shards", type=int, default=3, help="shards (default 3)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas per shard (default 2)")
    parser.add_argument("--base-port", type=int, default=7000,
                        help="shard s listens on base+s on its hosts (default 7000)")
    parser.add_argument("--node-timeout-ms", type=int, default=5000)
    parser.add_argument("--password-file", help="file whose first line is the Redis password")
    parser.add_argument("--redis-bin", default="/usr/bin/redis-server")
    parser.add_argument("--app-dir", default="/opt/chat", help="checkout with its .venv")


def render_cli(args: argparse.Namespace) -> int:
    password = read_password_file(Path(args.password_file)) if args.password_file else None
    config = ClusterRenderConfig(
        hosts=split_hosts(args.hosts), shards=args.shards, replicas=args.replicas,
        base_port=args.base_port, node_timeout_ms=args.node_timeout_ms, password=password,
        redis_bin=args.redis_bin, app_dir=args.app_dir,
    )
    out = Path(args.out)
    written = render(config, out)
    print(f"wrote {len(written)} files under {out}: {config.shards} shards x "
          f"{config.replicas + 1} nodes on {len(config.hosts)} hosts")
    print(f"then: {create_command(config)}")
    print(f"server flags: --cluster-nodes {config.cluster_nodes_arg}")
    if password:
        print(f"copy the password file to {PASSWORD_PATH} (mode 0600) on every host")
    return 0
