"""One Redis/Valkey process each: data nodes (AOF on) and Sentinels.

Processes run in a session of their own, so a Ctrl-C in the terminal that
started them does not kill them behind our back: only our stop() does, in the
order the set needs (Sentinels first, or they would fail over while we stop).
A process is known by its pid as well as by its Popen object, so a later CLI
call (`status`, `stop`, `kill`) can manage processes another call started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from .procutil import (
    SetError,
    find_server_binary,
    free_port,
    pid_alive,
    port_in_use,
    wait_for_port,
)

__all__ = [
    "RedisNode", "SentinelNode", "ServerProcess", "SetError", "find_server_binary",
    "free_port", "pid_alive", "port_in_use", "wait_for_port",
]


class ServerProcess:
    """A redis-server started from a config file in its own folder."""

    role_flag: tuple[str, ...] = ()

    def __init__(
        self, *, datadir: Path, port: int, host: str = "127.0.0.1", password: str | None = None
    ) -> None:
        self.datadir = datadir
        self.host = host
        self.port = port
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def conf_path(self) -> Path:
        return self.datadir / "redis.conf"

    @property
    def log_path(self) -> Path:
        return self.datadir / "redis.log"

    def client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, password=self.password,
            socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
        )

    def alive(self) -> bool:
        if self.proc is not None and self.proc.pid == self.pid:
            return self.proc.poll() is None
        return self.pid is not None and pid_alive(self.pid, self.port)

    def _write_file(self, text: str) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(text)
        # The file may hold requirepass; Redis must still be able to rewrite it.
        self.conf_path.chmod(0o600)

    def start(self, timeout: float = 20.0) -> None:
        if self.alive():
            return
        if not self.conf_path.exists():
            raise SetError(f"no config file {self.conf_path}")
        if port_in_use(self.host, self.port):
            raise SetError(f"port {self.host}:{self.port} is already in use")
        self.proc = subprocess.Popen(
            [find_server_binary(), str(self.conf_path), *self.role_flag],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the process answers PING, i.e. has loaded its AOF."""
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while True:
                if not self.alive():
                    raise SetError(f"{self.host}:{self.port} exited at start; see {self.log_path}")
                try:
                    client.ping()
                    return
                except (redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError):
                    if time.monotonic() > deadline:
                        raise SetError(
                            f"{self.host}:{self.port} not ready after {timeout}s; "
                            f"see {self.log_path}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def request_stop(self) -> None:
        """SIGTERM without waiting, so a group of processes stops in parallel."""
        self._signal(signal.SIGTERM)

    def _wait_gone(self, timeout: float) -> bool:
        if self.proc is not None and self.proc.pid == self.pid:
            try:
                self.proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def kill(self) -> None:
        """SIGKILL: the crash the durability promise is about."""
        self._signal(signal.SIGKILL)
        self._wait_gone(10)
        self.pid = None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Redis flushes its AOF), SIGKILL if it hangs. Idempotent."""
        self._signal(signal.SIGTERM)
        if not self._wait_gone(timeout):
            self.kill()
        self.pid = None


class RedisNode(ServerProcess):
    """One redis-server data node with AOF on, owning a data folder."""

    def __init__(
        self, *, datadir: Path, port: int, host: str = "127.0.0.1", password: str | None = None,
        replicaof: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(datadir=datadir, port=port, host=host, password=password)
        self.replicaof = replicaof

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def write_config(self, extra: str = "") -> None:
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f'dir "{self.datadir}"',
            "appendonly yes",
            "appendfsync everysec",
            "aof-use-rdb-preamble yes",
            'save ""',
            "protected-mode no",
            f'logfile "{self.log_path}"',
            # Replicas tell the primary (and through it Sentinel) where they
            # listen, instead of the address their connection came from.
            f"replica-announce-ip {self.host}",
            f"replica-announce-port {self.port}",
            # A full sync starts at once instead of waiting 5 s for more
            # replicas to share it: restarts and failovers settle sooner.
            "repl-diskless-sync-delay 0",
            # min-replicas-to-write stays unset on purpose: the chat server
            # enforces durability with WAIT, and a primary that refused writes
            # with one replica left would break the "last node serves" promise.
        ]
        if self.password:
            lines += [f'requirepass "{self.password}"', f'masterauth "{self.password}"']
        if self.replicaof:
            lines.append(f"replicaof {self.replicaof[0]} {self.replicaof[1]}")
        self._write_file("\n".join(lines) + "\n" + extra)

    def set_replicaof(self, primary: tuple[str, int] | None) -> None:
        """Rewrite the replicaof line of the config file (node stopped)."""
        kept = [
            line for line in self.conf_path.read_text().splitlines()
            if not line.strip().lower().startswith(("replicaof ", "slaveof "))
        ]
        if primary is not None and primary != self.address:
            kept.append(f"replicaof {primary[0]} {primary[1]}")
        self._write_file("\n".join(kept) + "\n")

    def start(self, timeout: float = 20.0) -> None:
        if not self.conf_path.exists():
            self.write_config()
        super().start(timeout)


class SentinelNode(ServerProcess):
    """One Sentinel; it rewrites its own config file (state survives restarts)."""

    role_flag = ("--sentinel",)

    @property
    def conf_path(self) -> Path:
        return self.datadir / "sentinel.conf"

    @property
    def log_path(self) -> Path:
        return self.datadir / "sentinel.log"

    def client(self, timeout: float = 1.0) -> redis.Redis:
        # Sentinels run without a password; `password` is the data nodes' one.
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout,
            socket_connect_timeout=timeout, decode_responses=True,
        )

    def write_config(
        self, *, master_name: str, primary: tuple[str, int], quorum: int,
        down_after_ms: int, failover_timeout_ms: int,
    ) -> None:
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f'dir "{self.datadir}"',
            "protected-mode no",
            f'logfile "{self.log_path}"',
            f"sentinel monitor {master_name} {primary[0]} {primary[1]} {quorum}",
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
            f"sentinel parallel-syncs {master_name} 1",
        ]
        if self.password:
            lines.append(f'sentinel auth-pass {master_name} "{self.password}"')
        self._write_file("\n".join(lines) + "\n")
