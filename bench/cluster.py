"""The processes a bench run owns: the local HA set, our servers, the peer's.

Everything is started on free ports under one temporary folder and stopped
in reverse order by `Cluster.stop`, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis
from websockets.asyncio.client import connect

from bench.drivers import chat_request
from deploy.redis_sentinel.nodes import SetError
from deploy.redis_sentinel.sentinelset import LocalSet
from tests.procs import ROOT, ServerProc

#: Our servers' limits that would otherwise measure the limiter, not the server:
#: the per-connection request rate, the per-address connection cap and the
#: per-address share of password hashing (make_users registers 8 at a time).
SERVER_FLAGS = ["--requests-per-second", "10000000", "--request-burst", "10000000",
                "--max-connections-per-ip", "20000", "--max-hash-per-address", "64"]
_PEER_LISTENING = re.compile(r"listening on (http://\S+)")


class Cluster:
    def __init__(self, root: Path, *, uvloop: bool) -> None:
        self.root = root
        self.uvloop = uvloop
        self.local = LocalSet(root=root / "redis")
        self.servers: dict[str, ServerProc] = {}
        self.peers: list[subprocess.Popen[str]] = []
        self._peer_logs: list[IO[str]] = []

    def start(self) -> None:
        self.local.start()

    def primary_url(self) -> str:
        host, port = self.local.primary_address()
        return f"redis://{host}:{port}/0"

    def start_server(self, name: str, extra: list[str] | None = None,
                     env: dict[str, str] | None = None) -> ServerProc:
        storage = ["--sentinel", self.local.sentinel_arg, "--sentinel-master", "chat"]
        proc = server_proc(self.root, name, [*storage, *(extra or [])], uvloop=self.uvloop,
                           env=env)
        self.servers[name] = proc
        return proc.start()

    def start_peer(self, name: str, timeout: float = 30.0) -> str:
        """A socket.io instance over the set's primary; its http:// URL."""
        log = (self.root / f"{name}.log").open("w")
        self._peer_logs.append(log)
        cmd = [sys.executable, "-m", "bench.peer", "--redis-url", self.primary_url()]
        if self.uvloop:
            cmd.append("--uvloop")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        self.peers.append(proc)
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = _PEER_LISTENING.search(line)
            if match:
                return match[1]
            if proc.poll() is not None:
                break
        raise RuntimeError(f"peer {name} did not start; see {log.name}")

    def rewrite_aofs(self) -> float:
        return rewrite_aofs([n.address for n in self.local.nodes if n.alive()])

    def pid_groups(self) -> dict[str, list[int]]:
        """Every live process of the run by role, for CPU accounting: our
        servers, each Valkey node (the primary marked), the Sentinels, peers."""
        groups: dict[str, list[int]] = {}
        for name, server in self.servers.items():
            if server.proc is not None and server.proc.poll() is None:
                groups[f"server {name}"] = [server.proc.pid]
        try:
            primary: int | None = self.local.node_index(self.local.primary_address())
        except SetError:
            primary = None
        pids = self.local.pids()
        for i in range(len(self.local.nodes)):
            if f"node-{i}" in pids:
                role = "primary" if i == primary else "replica"
                groups[f"valkey node-{i} ({role})"] = [pids[f"node-{i}"]]
        groups["sentinels"] = [pid for name, pid in pids.items() if name.startswith("sentinel")]
        for i, proc in enumerate(self.peers):
            if proc.poll() is None:
                groups[f"peer {'ab'[i] if i < 2 else i}"] = [proc.pid]
        return groups

    def stop_peers(self) -> None:
        for proc in self.peers:
            proc.terminate()
        for proc in self.peers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.peers.clear()

    def stop(self) -> None:
        self.stop_peers()
        for server in self.servers.values():
            server.stop()
        self.local.stop()
        for log in self._peer_logs:
            log.close()


async def make_users(url: str, names: list[str], password: str = "bench-password") -> list[str]:
    """Register and log in each name; their tokens, in order."""
    tokens: list[str] = [""] * len(names)
    queue = list(enumerate(names))

    async def worker() -> None:
        async with connect(url, open_timeout=30) as ws:
            while queue:
                index, name = queue.pop()
                reply = await chat_request(ws, "register", username=name, password=password)
                if not reply["ok"] and reply.get("error") != "username_taken":
                    raise RuntimeError(f"register {name}: {reply}")
                reply = await chat_request(ws, "login", username=name, password=password)
                if not reply["ok"]:
                    raise RuntimeError(f"login {name}: {reply}")
                tokens[index] = reply["token"]

    await asyncio.gather(*(worker() for _ in range(min(8, len(names)))))
    return tokens


def server_proc(root: Path, name: str, args: list[str], *, uvloop: bool,
                env: dict[str, str] | None = None) -> ServerProc:
    """Our server on a free port, limiters out of the way, `args` naming its Redis
    (after the limiter flags, so they may override them)."""
    args = ["--host", "127.0.0.1", "--port", "0", "--instance-id", name, *SERVER_FLAGS, *args]
    loop = {"CHAT_EVENT_LOOP": "uvloop" if uvloop else "asyncio"}
    return ServerProc(args=args, logdir=root, name=name, env={**loop, **(env or {})})


def rewrite_aofs(nodes: list[tuple[str, int]], timeout: float = 120.0) -> float:
    """Rewrite every node's AOF now and wait for the rewrites; the seconds taken.

    Run before each measured step: the writes of the steps before make
    Valkey's automatic rewrite due at some point, and on one machine all
    nodes fork and rewrite at once, for seconds. A step that caught it
    would measure that maintenance event, not the load it offers; the
    report describes the event's own effect.
    """
    started = time.monotonic()
    clients = [redis.Redis(host=host, port=port, socket_timeout=10) for host, port in nodes]
    try:
        for client in clients:
            with contextlib.suppress(redis.ResponseError):  # one already running
                client.bgrewriteaof()
        while time.monotonic() - started < timeout:
            infos = [client.info("persistence") for client in clients]
            if not any(i["aof_rewrite_in_progress"] or i["aof_rewrite_scheduled"]
                       for i in infos):
                break
            time.sleep(0.1)
    finally:
        for client in clients:
            client.close()
    return time.monotonic() - started


Pairs = list[tuple[str, str]]


def user_pairs(url: str, prefix: str, count: int) -> tuple[Pairs, Pairs]:
    """Register and log in `count` senders and `count` receivers named from
    `prefix`; (senders, receivers) as a Plan takes them: (token, recipient)
    and (token, name), sender i sending to receiver i."""
    rnames = [f"{prefix}r{i}" for i in range(count)]
    tokens = asyncio.run(make_users(url, [f"{prefix}s{i}" for i in range(count)] + rnames))
    return (list(zip(tokens[:count], rnames, strict=True)),
            list(zip(tokens[count:], rnames, strict=True)))
