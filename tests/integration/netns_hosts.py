"""Three "hosts" as network namespaces on a bridge, each with one Redis node and
one Sentinel (quorum 2), like the multi-host install of
deploy/redis-sentinel/render.py; `Net.cut` blackholes one host from the
others. Needs root and `ip netns` (`skip_without_netns`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from deploy.redis_sentinel.nodes import RedisNode, SentinelNode
from tests.procs import find_server_binary

HOSTS = 3
REDIS_PORT = 6379
SENTINEL_PORT = 26379
MASTER = "chat"
DOWN_AFTER_MS = 1000


def ip_cmd(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Net:
    """A bridge in the root namespace and one namespace + veth per host."""

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.subnet = f"10.213.{tag}"
        self.bridge = f"chb{tag}"
        self.namespaces = [f"chat{tag}h{i}" for i in range(HOSTS)]
        self.cuts: list[tuple[str, str]] = []  # (namespace, blackholed ip)

    def ip(self, host: int) -> str:
        return f"{self.subnet}.{host + 1}"

    def exec_prefix(self, host: int) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.namespaces[host])

    def up(self) -> None:
        ip_cmd("link", "add", self.bridge, "type", "bridge")
        ip_cmd("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        ip_cmd("link", "set", self.bridge, "up")
        for host, ns in enumerate(self.namespaces):
            outer, inner = f"chv{self.tag}h{host}", f"chp{self.tag}h{host}"
            ip_cmd("netns", "add", ns)
            ip_cmd("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip_cmd("link", "set", inner, "netns", ns)
            ip_cmd("link", "set", outer, "master", self.bridge)
            ip_cmd("link", "set", outer, "up")
            ip_cmd("-n", ns, "addr", "add", f"{self.ip(host)}/24", "dev", inner)
            ip_cmd("-n", ns, "link", "set", inner, "up")
            ip_cmd("-n", ns, "link", "set", "lo", "up")

    def cut(self, host: int) -> None:
        """Drop every packet between `host` and the other hosts (not the root namespace)."""
        for other in range(HOSTS):
            if other != host:
                for ns, dest in ((self.namespaces[host], self.ip(other)),
                                 (self.namespaces[other], self.ip(host))):
                    ip_cmd("-n", ns, "route", "add", "blackhole", f"{dest}/32")
                    self.cuts.append((ns, dest))

    def heal(self) -> None:
        while self.cuts:
            ns, dest = self.cuts.pop()
            ip_cmd("-n", ns, "route", "del", "blackhole", f"{dest}/32")

    def down(self) -> None:
        """Remove everything up() made; each step on its own so one failure stops nothing."""
        for ns in self.namespaces:
            with contextlib.suppress(subprocess.SubprocessError):
                ip_cmd("netns", "del", ns)  # takes its end of the veth pair along
        with contextlib.suppress(subprocess.SubprocessError):
            ip_cmd("link", "del", self.bridge)


class HostProcess:
    """A Redis node or Sentinel started inside a namespace from its config file."""

    def __init__(self, node: RedisNode | SentinelNode, prefix: tuple[str, ...]) -> None:
        self.node = node
        self.prefix = prefix
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.prefix, find_server_binary(), str(self.node.conf_path),
             *self.node.role_flag],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with self.node.client() as client:
                    client.ping()
                    return
            except (redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.node.address} did not start; see "
                                       f"{self.node.log_path}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def skip_without_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed")
    probe = f"chatprobe{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"ip netns unavailable: {result.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Hosts:
    """One Redis node and one Sentinel per host; host 0 starts as the primary."""

    def __init__(self, net: Net, root: Path) -> None:
        self.net = net
        self.nodes = [RedisNode(datadir=root / f"node-{i}", host=net.ip(i), port=REDIS_PORT)
                      for i in range(HOSTS)]
        self.sentinels = [SentinelNode(datadir=root / f"sentinel-{i}", host=net.ip(i),
                                       port=SENTINEL_PORT) for i in range(HOSTS)]
        self.procs: list[HostProcess] = []

    @property
    def sentinel_arg(self) -> str:
        return ",".join(f"{s.host}:{s.port}" for s in self.sentinels)

    def start(self) -> None:
        primary = self.nodes[0].address
        for i, node in enumerate(self.nodes):
            node.replicaof = None if i == 0 else primary
            node.write_config()
            self._start(HostProcess(node, self.net.exec_prefix(i)))
        for i, sentinel in enumerate(self.sentinels):
            sentinel.write_config(master_name=MASTER, primary=primary, quorum=2,
                                  down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=5000)
            self._start(HostProcess(sentinel, self.net.exec_prefix(i)))
            with sentinel.client() as client:
                client.execute_command("SENTINEL", "DEBUG", "INFO-PERIOD", 1000)

    def _start(self, proc: HostProcess) -> None:
        self.procs.append(proc)
        proc.start()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def sentinel_says(self, index: int) -> dict[str, Any] | None:
        try:
            with self.sentinels[index].client() as client:
                state: dict[str, Any] = client.sentinel_master(MASTER)
                return state
        except (redis.RedisError, OSError):
            return None

    def primary_per(self, index: int) -> str | None:
        state = self.sentinel_says(index)
        return f"{state['ip']}:{state['port']}" if state else None

    def healthy(self) -> bool:
        """Every Sentinel names node 0..2's current primary and sees 2 replicas
        and 2 other Sentinels, and each replica's link is up."""
        states = [self.sentinel_says(i) for i in range(HOSTS)]
        if any(s is None or s["num-slaves"] < HOSTS - 1 or s["num-other-sentinels"] < HOSTS - 1
               for s in states):
            return False
        primaries = {(s["ip"], s["port"]) for s in states if s}
        if len(primaries) != 1:
            return False
        for node in self.nodes:
            try:
                with node.client() as client:
                    info = client.info("replication")
            except (redis.RedisError, OSError):
                return False
            if (node.host, node.port) not in primaries and info.get("master_link_status") != "up":
                return False
        return True

    def unfenced(self) -> bool:
        """No node is left with replica-priority 0 (a fence not lifted)."""
        for node in self.nodes:
            try:
                with node.client() as client:
                    if client.config_get("replica-priority")["replica-priority"] == "0":
                        return False
            except (redis.RedisError, OSError):
                return False
        return True
