"""Real processes for tests: chat server instances on free ports.

Redis nodes and Sentinel sets come from deploy.redis_sentinel (deploy/redis-sentinel/),
the same code `make run` uses.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.redis_sentinel.redisset import (
    RedisNode,
    find_server_binary,
    free_port,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "ROOT", "RedisNode", "ServerProc", "dev_running", "find_server_binary", "free_port",
    "wait_for_port",
]

_LISTENING = re.compile(r"listening on (ws|wss)://([^:/]+):(\d+)/ws")

# Cheap argon2 parameters keep registration fast in tests; production
# defaults live in server/settings.py.
TEST_ENV = {
    "CHAT_ARGON2_TIME_COST": "1",
    "CHAT_ARGON2_MEMORY_KIB": "1024",
    "CHAT_ARGON2_PARALLELISM": "1",
}


class ServerProc:
    """One `python -m server --port 0` process; `url` is its WebSocket URL."""

    def __init__(
        self, *, args: list[str], logdir: Path, name: str, env: dict[str, str],
        prefix: tuple[str, ...] = (), cwd: Path = ROOT,
    ) -> None:
        """prefix: argv words before python, e.g. ("ip", "netns", "exec", NS);
        cwd: the checkout whose server runs (bench/ab.py runs older ones too)."""
        self.args = args
        self.cwd = cwd
        self.prefix = prefix
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.scheme = "ws"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.scheme == "wss" else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProc:
        env = {**os.environ, **TEST_ENV, **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "server", *self.args],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.scheme, self.host, self.port = match[1], match[2], int(match[3])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.name} exited:\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"server {self.name} did not listen:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode


@contextmanager
def dev_running(
    argv: list[str], cleanup: Callable[[], None],
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A `... dev` command (make run, make run-cluster) read up to its ready
    line; killed if still up, then `cleanup` stops what it left behind."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cleanup()
