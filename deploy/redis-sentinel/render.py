"""Render configs for a multi-host install: one Redis + one Sentinel per host.

OUT/<host>/ gets redis.conf, sentinel.conf and the systemd units
chat-redis.service, chat-sentinel.service and chat-server@.service, from the
templates in templates/. Hosts that only run a Sentinel (the 4th and 5th of
a 5-Sentinel install) get just the Sentinel files. The first host starts as
primary; Sentinel moves that role later and rewrites the files on disk.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .procutil import SetError, read_password_file

TEMPLATES = Path(__file__).resolve().parent / "templates"
PASSWORD_PATH = "/etc/chat/redis-password"


def quorum_for(sentinels: int) -> int:
    """A majority: 2 of 3, 3 of 5. Failover also needs a majority of all
    Sentinels to elect a leader, so a quorum below that buys nothing."""
    return sentinels // 2 + 1


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class RenderConfig:
    hosts: list[str]
    sentinel_hosts: list[str]
    master_name: str = "chat"
    redis_port: int = 6379
    sentinel_port: int = 26379
    down_after_ms: int = 5000
    failover_timeout_ms: int = 60_000
    password: str | None = None
    redis_bin: str = "/usr/bin/redis-server"
    app_dir: str = "/opt/chat"
    state_dir: str = "/var/lib/chat"
    user: str = "chat"

    @property
    def quorum(self) -> int:
        return quorum_for(len(self.sentinel_hosts))

    @property
    def sentinel_arg(self) -> str:
        return ",".join(f"{h}:{self.sentinel_port}" for h in self.sentinel_hosts)


def _check(config: RenderConfig) -> None:
    if len(config.hosts) < 1 or len(set(config.hosts)) != len(config.hosts):
        raise SetError("--hosts needs one or more distinct hosts")
    if len(set(config.sentinel_hosts)) != len(config.sentinel_hosts):
        # Two Sentinels on one host fall together: that defeats counting hosts.
        raise SetError("--sentinel-hosts must be distinct hosts (one Sentinel per host)")
    if len(config.sentinel_hosts) < 3:
        raise SetError("automatic failover needs at least 3 Sentinels on 3 hosts")


def fill(name: str, values: dict[str, object], folder: Path = TEMPLATES) -> str:
    """templates/NAME.tmpl with $values substituted (deploy/redis-cluster passes its folder)."""
    text = (folder / f"{name}.tmpl").read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def render(config: RenderConfig, out: Path) -> list[Path]:
    """Write every host's files under out/<host>/; returns the paths written."""
    _check(config)
    primary = config.hosts[0]
    names_need_dns = not all(is_ip(h) for h in (*config.hosts, *config.sentinel_hosts))
    written: list[Path] = []
    for host in dict.fromkeys([*config.hosts, *config.sentinel_hosts]):
        folder = out / host
        folder.mkdir(parents=True, exist_ok=True)
        values: dict[str, object] = {
            "host": host, "bind": f"{host} 127.0.0.1" if is_ip(host) else "* -::*",
            "redis_port": config.redis_port, "sentinel_port": config.sentinel_port,
            "state_dir": config.state_dir, "redis_bin": config.redis_bin, "user": config.user,
            "app_dir": config.app_dir, "master_name": config.master_name,
            "sentinels": len(config.sentinel_hosts), "quorum": config.quorum,
            "primary": primary, "down_after_ms": config.down_after_ms,
            "failover_timeout_ms": config.failover_timeout_ms,
            "sentinel_arg": config.sentinel_arg, "server_bind": "0.0.0.0",
        }
        files: dict[str, str] = {}
        if host in config.hosts:
            auth = (f'requirepass "{config.password}"\nmasterauth "{config.password}"\n'
                    if config.password else "")
            replicaof = "" if host == primary else f"replicaof {primary} {config.redis_port}\n"
            files["redis.conf"] = fill("redis.conf", {**values, "auth": auth,
                                                       "replicaof": replicaof})
            server_pw = f" --redis-password-file {PASSWORD_PATH}" if config.password else ""
            rejoin_pw = f" --password-file {PASSWORD_PATH}" if config.password else ""
            files["chat-redis.service"] = fill("chat-redis.service",
                                                {**values, "rejoin_password": rejoin_pw})
            store_args = (f"--sentinel {config.sentinel_arg} "
                          f"--sentinel-master {config.master_name}")
            files["chat-server@.service"] = fill(
                "chat-server@.service",
                {**values, "server_password": server_pw, "store_args": store_args})
        if host in config.sentinel_hosts:
            hostnames = ("sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n"
                         if names_need_dns else "")
            auth = (f'sentinel auth-pass {config.master_name} "{config.password}"\n'
                    if config.password else "")
            files["sentinel.conf"] = fill("sentinel.conf", {**values, "auth": auth,
                                                             "hostnames": hostnames})
            files["chat-sentinel.service"] = fill("chat-sentinel.service", values)
        for name, text in files.items():
            path = folder / name
            path.write_text(text)
            if name.endswith(".conf"):
                path.chmod(0o600)  # may hold the password
            written.append(path)
    return written


def split_hosts(text: str) -> list[str]:
    return [h.strip() for h in text.split(",") if h.strip()]


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", required=True,
                        help="Redis hosts h1,h2,h3 (h1 starts as primary); IPs or DNS names")
    parser.add_argument("--sentinels", type=int, default=None,
                        help="number of Sentinels (default: one per --sentinel-hosts/--hosts); "
                             "5 survive the loss of 2 hosts")
    parser.add_argument("--sentinel-hosts", default=None,
                        help="hosts for the Sentinels (default: the Redis hosts)")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per host)")
    parser.add_argument("--password-file", help="file whose first line is the Redis password")
    parser.add_argument("--master-name", default="chat")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--sentinel-port", type=int, default=26379)
    parser.add_argument("--down-after-ms", type=int, default=5000)
    parser.add_argument("--failover-timeout-ms", type=int, default=60_000)
    parser.add_argument("--redis-bin", default="/usr/bin/redis-server")
    parser.add_argument("--app-dir", default="/opt/chat", help="checkout with its .venv")


def render_cli(args: argparse.Namespace) -> int:
    hosts = split_hosts(args.hosts)
    sentinel_hosts = split_hosts(args.sentinel_hosts) if args.sentinel_hosts else list(hosts)
    count = args.sentinels if args.sentinels is not None else len(sentinel_hosts)
    if count != len(sentinel_hosts):
        raise SetError(f"--sentinels {count} needs {count} hosts in --sentinel-hosts "
                       f"(got {len(sentinel_hosts)}: {','.join(sentinel_hosts)})")
    password = read_password_file(Path(args.password_file)) if args.password_file else None
    config = RenderConfig(
        hosts=hosts, sentinel_hosts=sentinel_hosts, master_name=args.master_name,
        redis_port=args.redis_port, sentinel_port=args.sentinel_port,
        down_after_ms=args.down_after_ms, failover_timeout_ms=args.failover_timeout_ms,
        password=password, redis_bin=args.redis_bin, app_dir=args.app_dir,
    )
    out = Path(args.out)
    written = render(config, out)
    print(f"wrote {len(written)} files under {out} for {len(hosts)} Redis hosts and "
          f"{len(sentinel_hosts)} Sentinels (quorum {config.quorum})")
    print(f"server flags: --sentinel {config.sentinel_arg} --sentinel-master {config.master_name}")
    if password:
        print(f"copy the password file to {PASSWORD_PATH} (mode 0600) on every server host")
    return 0
