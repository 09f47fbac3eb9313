"""LocalCluster: a Redis Cluster of N shards (a primary and R replicas each) on one host.

Everything lives under one root folder: ROOT/node-N/ holds a node's
redis.conf, nodes.conf, log and AOF; ROOT/cluster.json records ports, pids
and shard ids so another process (the CLI) can show, kill or stop it. The
cluster is formed with CLUSTER commands only (no redis-cli): SET-CONFIG-EPOCH
and ADDSLOTSRANGE on each fresh primary, MEET, then REPLICATE on replicas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.crc import key_slot

from deploy.redis_sentinel.probes import wait_until
from deploy.redis_sentinel.procutil import SetError, port_in_use

from . import clusterprobes, clusterstate, formation
from .clusternode import (
    BUS_OFFSET,
    SLOTS,
    Address,
    ClusterNode,
    RemoteNode,
    cluster_nodes,
    cluster_shards,
    free_cluster_port,
)
from .clusterprobes import Shard
from .clusterstatus import format_status, gather_status


class LocalCluster:
    """A local cluster. Keyword-only config; create()/stop_all() own every process."""

    def __init__(
        self, *, root: Path, shards: int = 3, replicas: int = 2, base_port: int | None = None,
        ports: list[int] | None = None, password: str | None = None,
        host: str = "127.0.0.1", node_timeout_ms: int = 2000,
    ) -> None:
        """Ports: `ports` (one per node, shard by shard, primary first), else
        base_port, base_port+1, ..., else free ports. node_timeout_ms is how
        long a node may be silent before a failover starts."""
        if shards < 1 or replicas < 0:
            raise SetError("need at least one shard and zero or more replicas")
        count = shards * (replicas + 1)
        if ports is not None and len(ports) < count:
            raise SetError(f"{shards} shards x {replicas + 1} nodes need {count} ports")
        self.root = Path(root).resolve()
        self.shard_count = shards
        self.replicas = replicas
        self.password = password
        self.host = host
        self.node_timeout_ms = node_timeout_ms
        self.base_port = base_port
        self.shard_ids: list[str] = []
        self.attached = False  # True: a handle on remote nodes (attach), nothing to save
        self.nodes: list[ClusterNode] = []
        for i in range(count):
            self.nodes.append(self.new_node(ports[i] if ports is not None else None))

    # -- layout -------------------------------------------------------------

    def _port(self, index: int) -> int:
        if self.base_port is None:
            return free_cluster_port(self.host, {n.port for n in self.nodes})
        if self.base_port + index + BUS_OFFSET > 65535:
            raise SetError(f"base port {self.base_port} leaves no room for node {index}")
        return self.base_port + index

    def new_node(self, port: int | None = None) -> ClusterNode:
        """A node object in the next free folder (not started, not in self.nodes)."""
        index = len(self.nodes)
        return ClusterNode(datadir=self.root / f"node-{index}", host=self.host,
                           port=port or self._port(index), password=self.password,
                           node_timeout_ms=self.node_timeout_ms)

    @property
    def state_path(self) -> Path:
        return self.root / clusterstate.STATE_FILE

    @property
    def seeds(self) -> list[Address]:
        """Every node's address: any live one lets a client find the rest."""
        return [n.address for n in self.nodes]

    @property
    def cluster_nodes_arg(self) -> str:
        """The chat server's --cluster-nodes value: "127.0.0.1:p1,127.0.0.1:p2,..."."""
        return ",".join(f"{h}:{p}" for h, p in self.seeds)

    def node(self, which: ClusterNode | Address | int) -> ClusterNode:
        """A node by object, (host, port) or index in self.nodes."""
        if isinstance(which, ClusterNode):
            return which
        if isinstance(which, int):
            return self.nodes[which]
        for node in self.nodes:
            if node.address == tuple(which):
                return node
        raise SetError(f"{which[0]}:{which[1]} is not a node of this cluster")

    def pids(self) -> dict[str, int]:
        """Pid of every running node, by name (node-0, node-1, ...)."""
        clusterstate.adopt(self)
        return {n.name: n.pid for n in self.nodes if n.alive() and n.pid}

    # -- persistence ----------------------------------------------------------

    def save(self) -> None:
        if not self.attached:
            clusterstate.save(self)

    @classmethod
    def load(cls, root: Path) -> LocalCluster:
        """The cluster recorded in ROOT/cluster.json (nodes may or may not run)."""
        return clusterstate.load(cls, Path(root).resolve())

    @classmethod
    def attach(cls, seeds: list[Address], *, password: str | None = None,
               root: Path = Path(".")) -> LocalCluster:
        """A handle on a running cluster whose nodes other hosts run (systemd):
        status, create, add-shard, forget; never starts or stops a process.
        Every node the first answering seed knows is included. root holds
        only an add-shard plan."""
        cluster = cls(root=root, shards=1, replicas=0, ports=[seeds[0][1]], password=password)
        cluster.attached = True
        for host, port in seeds:
            lines = cluster_nodes(RemoteNode(host=host, port=port, password=password))
            if lines is not None:
                known = [line.address for line in lines if "noaddr" not in line.flags]
                break
        else:
            raise SetError(f"no seed answers: {', '.join(f'{h}:{p}' for h, p in seeds)}")
        ordered = list(dict.fromkeys([*seeds, *known]))
        cluster.nodes = [RemoteNode(host=h, port=p, password=password) for h, p in ordered]
        # Shard numbers by lowest slot: the same on every call, for people.
        reply = cluster_shards(cluster.nodes[0]) or []
        cluster.shard_ids = [e["id"] for e in sorted(
            reply, key=lambda e: min((s for s, _ in e["slots"]), default=SLOTS))]
        return cluster

    # -- whole cluster --------------------------------------------------------

    def create(self, timeout: float = 60.0) -> None:
        """Start the nodes and form a fresh cluster; returns once healthy."""
        if self.state_path.exists():
            raise SetError(f"{self.root} already holds a cluster; start_all() or remove it")
        busy = [p for n in self.nodes for p in (n.port, n.port + BUS_OFFSET)
                if port_in_use(n.host, p)]
        if busy:
            raise SetError(f"port {busy[0]} on {self.host} is already in use")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.password:
            clusterstate.write_password(self.root, self.password)
        try:
            for node in self.nodes:
                node.write_config()
                node.start()
                self.save()
            primaries = formation.form(self.nodes, replicas=self.replicas, timeout=timeout)
            self.wait_healthy(timeout)
            self.shard_ids = [self._shard_id_of(p) for p in primaries]
            self.save()
        except BaseException:
            self.stop_all()
            raise

    def _shard_id_of(self, primary: ClusterNode) -> str:
        for shard in self.shards():
            if shard.primary == primary.address:
                return shard.id
        raise SetError(f"{primary.host}:{primary.port} leads no shard")

    def stop_all(self) -> None:
        """Stop every node (SIGTERM, they flush their AOF; SIGKILL if one
        hangs), in parallel. Idempotent; also stops nodes another process
        recorded for this cluster."""
        clusterstate.adopt(self)
        for node in self.nodes:
            node.request_stop()
        for node in self.nodes:
            node.stop()
        if self.state_path.exists():
            self.save()

    def kill_all(self) -> None:
        """SIGKILL every node: the crash of the whole cluster."""
        clusterstate.adopt(self)
        for node in self.nodes:
            node.kill()
        self.save()

    def start_all(self, timeout: float = 60.0) -> None:
        """Start every stopped node from its folder (each rejoins from its
        nodes.conf, data from its AOF); returns once healthy."""
        for node in self.nodes:
            node.start(timeout)  # returns once PING answers, i.e. the AOF is loaded
            self.save()
        self.wait_healthy(timeout)

    # -- one node -------------------------------------------------------------

    def kill(self, which: ClusterNode | Address | int) -> None:
        """SIGKILL one node (no AOF flush beyond what everysec did)."""
        self.node(which).kill()
        self.save()

    def stop(self, which: ClusterNode | Address | int) -> None:
        """SIGTERM one node (it flushes its AOF); its cluster fails over if it was a primary."""
        self.node(which).stop()
        self.save()

    def start(self, which: ClusterNode | Address | int, *, wait: bool = True,
              timeout: float = 60.0) -> None:
        """(Re)start one node from its folder: it rejoins from its nodes.conf
        (an old primary comes back as a replica of the one that replaced it).
        wait: return only once the cluster is healthy again."""
        node = self.node(which)
        node.start(timeout)
        self.save()
        if wait:
            self.wait_healthy(timeout)

    # -- queries ----------------------------------------------------------------

    def shards(self) -> list[Shard]:
        """Every shard's primary, replicas and slots (CLUSTER SHARDS), in creation order."""
        return clusterprobes.shards(self)

    def shard_of(self, key: str | bytes) -> Shard:
        """The shard serving `key`'s slot (hash tags count: "{alice}:x")."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for shard in self.shards():
            if any(start <= slot <= end for start, end in shard.slots):
                return shard
        raise SetError(f"no shard serves slot {slot}")

    def shard_of_node(self, which: ClusterNode | Address | int) -> Shard:
        """The shard `which` belongs to (as primary or replica)."""
        address = self.node(which).address
        for shard in self.shards():
            if address in shard.nodes:
                return shard
        raise SetError(f"{address[0]}:{address[1]} is in no shard")

    def shard(self, index: int) -> Shard:
        found = self.shards()
        if not 0 <= index < len(found):
            raise SetError(f"no shard {index}; the cluster has shards 0..{len(found) - 1}")
        return found[index]

    def wait_for_failover(self, shard: Shard | int, timeout: float = 30.0) -> Address:
        """Wait until another node than `shard.primary` is the shard's online
        primary, agreed by every live node; return its address. Pass the
        Shard taken before the primary went down (an int asks now: only
        right if the nodes still name the old primary)."""
        before = self.shard(shard) if isinstance(shard, int) else shard
        return clusterprobes.wait_for_failover(self, before, timeout)

    def status(self) -> dict[str, Any]:
        """Every shard's slots, primary, config epoch and nodes: see clusterstatus."""
        return gather_status(self)

    def status_text(self) -> str:
        return format_status(self.status())

    def problems(self) -> list[str]:
        """What keeps the cluster from healthy; [] when healthy."""
        return clusterprobes.problems(self)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until every live node says cluster_state ok, all agree on the
        slot map and every live replica's link is up."""
        last: list[list[str]] = [[]]

        def ok() -> bool:
            last[0] = self.problems()
            return not last[0]

        try:
            wait_until(ok, timeout, "the cluster did not become healthy")
        except SetError as exc:
            raise SetError(f"{exc}: {'; '.join(last[0][:5])}") from None
