"""LocalSet: a primary, its replicas and the Sentinels watching them, on one host.

Everything lives under one root folder: ROOT/node-N/ and ROOT/sentinel-N/
each hold a config file, a log and (nodes) the AOF. ROOT/state.json records
ports and pids so another process (the CLI) can show, kill or stop the set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import probes, rejoin, setstate
from .nodes import RedisNode, SentinelNode, SetError, free_port, port_in_use
from .status import format_status, gather_status

Address = tuple[str, int]
STATE_FILE = "state.json"
PASSWORD_FILE = "password"


class LocalSet:
    """A local HA set. Keyword-only config; start()/stop() own every process."""

    def __init__(
        self, *, root: Path, base_port: int | None = None, replicas: int = 2,
        sentinels: int = 3, master_name: str = "chat", password: str | None = None,
        down_after_ms: int = 2000, failover_timeout_ms: int = 10_000,
        host: str = "127.0.0.1", info_period_ms: int | None = 1000,
    ) -> None:
        """base_port None picks free ports; else nodes get base_port+i and
        Sentinels base_port+20000+i (the 6379/26379 habit). info_period_ms
        speeds up how soon Sentinels notice new replicas and role changes
        (SENTINEL DEBUG; None keeps Sentinel's 10 s default)."""
        if sentinels < 1 or replicas < 0:
            raise SetError("need at least one Sentinel and zero or more replicas")
        self.root = Path(root).resolve()
        self.base_port = base_port
        self.master_name = master_name
        self.password = password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.host = host
        self.info_period_ms = info_period_ms
        self.quorum = sentinels // 2 + 1
        self.nodes = [self._new_node(i) for i in range(replicas + 1)]
        self.sentinels = [
            SentinelNode(datadir=self.root / f"sentinel-{i}", host=host,
                         port=self._port(20000 + i), password=password)
            for i in range(sentinels)
        ]

    # -- layout -------------------------------------------------------------

    def _port(self, offset: int) -> int:
        if self.base_port is None:
            return free_port()
        port = self.base_port + offset
        if port > 65535:
            raise SetError(f"base port {self.base_port} leaves no room for port offset {offset}")
        return port

    def _new_node(self, index: int, port: int | None = None) -> RedisNode:
        return RedisNode(datadir=self.root / f"node-{index}", host=self.host,
                         port=port or self._port(index), password=self.password)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def sentinel_addresses(self) -> list[Address]:
        return [s.address for s in self.sentinels]

    @property
    def sentinel_arg(self) -> str:
        """The chat server's --sentinel value: "127.0.0.1:p1,127.0.0.1:p2,..."."""
        return ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses())

    def pids(self) -> dict[str, int]:
        """Pid of every running process, by name (node-0, sentinel-1, ...)."""
        setstate.adopt(self)
        out = {f"node-{i}": n.pid for i, n in enumerate(self.nodes) if n.alive() and n.pid}
        out.update({f"sentinel-{i}": s.pid for i, s in enumerate(self.sentinels)
                    if s.alive() and s.pid})
        return out

    def node_index(self, address: Address) -> int:
        for i, node in enumerate(self.nodes):
            if node.address == address:
                return i
        raise SetError(f"{address[0]}:{address[1]} is not a node of this set")

    # -- persistence ----------------------------------------------------------

    def save(self) -> None:
        setstate.save(self)

    @classmethod
    def load(cls, root: Path) -> LocalSet:
        """The set recorded in ROOT/state.json (processes may or may not run)."""
        return setstate.load(cls, Path(root).resolve())

    # -- whole set ------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start a fresh set: node-0 primary, the others its replicas, then
        the Sentinels; returns once every Sentinel sees every node."""
        if self.state_path.exists():
            raise SetError(f"{self.root} already holds a set; restart it or remove the folder")
        busy = [p for s in (*self.nodes, *self.sentinels) if port_in_use(s.host, p := s.port)]
        if busy:
            raise SetError(f"port {busy[0]} on {self.host} is already in use")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.password:
            pw_path = self.root / PASSWORD_FILE
            pw_path.write_text(self.password)
            pw_path.chmod(0o600)
        primary = self.nodes[0].address
        try:
            for node in self.nodes:
                node.replicaof = None if node.address == primary else primary
                node.write_config()
                node.start()
                self.save()
            for sentinel in self.sentinels:
                self._write_sentinel_config(sentinel, primary)
                self._start_sentinel(sentinel)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _write_sentinel_config(self, sentinel: SentinelNode, primary: Address) -> None:
        sentinel.write_config(
            master_name=self.master_name, primary=primary, quorum=self.quorum,
            down_after_ms=self.down_after_ms, failover_timeout_ms=self.failover_timeout_ms)

    def _start_sentinel(self, sentinel: SentinelNode) -> None:
        sentinel.start()
        self.save()
        if self.info_period_ms is not None:
            # A runtime-only knob: set again on every start.
            with sentinel.client() as client:
                client.execute_command("SENTINEL", "DEBUG", "INFO-PERIOD", self.info_period_ms)

    def stop(self) -> None:
        """Stop every process of the set (Sentinels first, so they do not
        fail over while the nodes go down). Idempotent."""
        setstate.adopt(self)
        for group in (self.sentinels, self.nodes):
            for proc in group:
                proc.request_stop()
            for proc in group:
                proc.stop()
        if self.root.exists() and self.state_path.exists():
            self.save()

    def kill_all(self) -> None:
        """SIGKILL every process: the power-cut-free crash of the whole set."""
        setstate.adopt(self)
        for proc in (*self.sentinels, *self.nodes):
            proc.kill()
        self.save()

    def last_known_primary(self) -> Address:
        """The primary the newest Sentinel config on disk names (see setstate)."""
        return setstate.last_known_primary(self)

    def restart_all(self, timeout: float = 60.0) -> Address:
        """Stop what runs, then start the last known primary first and wait
        until it has loaded its AOF, then the replicas, then the Sentinels.

        An ex-primary started early as a primary could otherwise be taken
        for the primary and make the real one resync from its stale data."""
        self.stop()
        primary = self.last_known_primary()
        first = self.nodes[self.node_index(primary)]
        first.set_replicaof(None)
        first.start(timeout)  # returns once PING answers, i.e. the AOF is loaded
        self.save()
        for node in self.nodes:
            if node is not first:
                node.set_replicaof(primary)
                node.start(timeout)
                self.save()
        for sentinel in self.sentinels:
            self._start_sentinel(sentinel)
        self.wait_healthy(timeout)
        return primary

    # -- one node -------------------------------------------------------------

    def kill_node(self, index: int) -> None:
        """SIGKILL node `index` (no AOF flush beyond what everysec did)."""
        self.nodes[index].kill()
        self.save()

    def kill_sentinel(self, index: int) -> None:
        self.sentinels[index].kill()
        self.save()

    def restart_sentinel(self, index: int) -> None:
        self._start_sentinel(self.sentinels[index])

    def restart_node(self, index: int, timeout: float = 30.0) -> None:
        """(Re)start node `index` from its config file. If the Sentinels
        agree on another primary, the file is first pointed at it and the
        node fenced (rejoin.py): an old primary comes back as a replica
        Sentinel cannot promote, instead of a stale primary that takes
        writes until Sentinel demotes it. The chat servers lift the fence
        once it is in sync."""
        node = self.nodes[index]
        node.stop()
        if node.conf_path.exists():
            rejoin.fence_before_start(node.conf_path, node.address, self.sentinel_addresses(),
                                      self.master_name, self.password)
        node.start(timeout)
        self.save()

    def add_replica(self, timeout: float = 30.0) -> int:
        """Start a new node as a replica of the current primary; returns its
        index once it is in sync and every running Sentinel lists it (they
        find it through the primary's INFO)."""
        primary = self.primary_address()
        index = len(self.nodes)
        port = self._port(index)
        if port_in_use(self.host, port):
            raise SetError(f"port {port} on {self.host} is already in use")
        node = self._new_node(index, port)
        node.replicaof = primary
        node.write_config()
        self.nodes.append(node)
        node.start(timeout)
        self.save()
        probes.wait_until(lambda: probes.in_sync(node), timeout,
                   f"the new replica {node.host}:{node.port} did not sync")
        probes.wait_until(lambda: probes.replica_seen_by_all(self, node.address), timeout,
                   f"Sentinels did not list the new replica {node.host}:{node.port}")
        return index

    # -- queries ----------------------------------------------------------------

    def primary_address(self) -> Address:
        """The primary a majority of all configured Sentinels names."""
        return probes.primary_address(self)

    def wait_for_failover(self, old_primary: Address, timeout: float = 30.0) -> Address:
        """Wait until a Sentinel majority names a primary other than
        old_primary and that node acts as primary; return its address."""
        return probes.wait_for_failover(self, old_primary, timeout)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until Sentinels agree on a primary, every running node
        replicates from it, every Sentinel lists every running replica and
        knows the other running Sentinels (so a failover can be voted)."""
        probes.wait_until(lambda: probes.healthy(self), timeout, "the set did not become healthy")

    def status(self) -> dict[str, Any]:
        """Who is primary per Sentinel majority, each node's role, offset and
        lag, each Sentinel's view: see status.gather_status."""
        return gather_status(self)

    def status_text(self) -> str:
        return format_status(self.status())
