"""One cluster-enabled node and what it says about the cluster.

ClusterNode is the Sentinel set's RedisNode (same AOF settings, password,
start/stop/kill, pid tracking) with the cluster lines added to its config.
The readers below parse CLUSTER NODES and CLUSTER SHARDS replies into plain
values and treat an unreachable node as None, because callers poll them
while nodes die and come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from deploy.redis_sentinel.nodes import RedisNode
from deploy.redis_sentinel.procutil import SetError, free_port, port_in_use

Address = tuple[str, int]
SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


def free_cluster_port(host: str, taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        bus = port + BUS_OFFSET
        if port not in taken and bus <= 65535 and not port_in_use(host, bus):
            return port
    raise SetError("found no free port pair (port, port+10000)")


class ClusterNode(RedisNode):
    """A RedisNode with cluster-enabled yes and its nodes.conf in its folder."""

    def __init__(
        self, *, datadir: Path, port: int, host: str = "127.0.0.1",
        password: str | None = None, node_timeout_ms: int = 2000,
    ) -> None:
        super().__init__(datadir=datadir, port=port, host=host, password=password)
        self.node_timeout_ms = node_timeout_ms

    @property
    def name(self) -> str:
        return self.datadir.name

    @property
    def nodes_conf_path(self) -> Path:
        return self.datadir / "nodes.conf"

    def write_config(self, extra: str = "") -> None:
        lines = [
            "cluster-enabled yes",
            # Relative to `dir`: the node's own folder. The node rewrites it
            # on every change, so a restart rejoins with its id, role and slots.
            'cluster-config-file "nodes.conf"',
            f"cluster-node-timeout {self.node_timeout_ms}",
            # The node announces the address it binds; clients are redirected there.
            f"cluster-announce-ip {self.host}",
        ]
        super().write_config("\n".join(lines) + "\n" + extra)


@dataclass(frozen=True)
class NodeLine:
    """One line of CLUSTER NODES, as the asked node sees that node."""

    id: str
    address: Address
    flags: frozenset[str]
    master_id: str | None
    config_epoch: int
    link: str
    slots: tuple[tuple[int, int], ...]
    migrating: tuple[str, ...] = field(default=())

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})


def parse_nodes(text: str) -> list[NodeLine]:
    out: list[NodeLine] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 8:
            continue
        host, _, rest = words[1].rpartition(":")
        port = int(rest.split("@")[0].split(",")[0])
        slots: list[tuple[int, int]] = []
        open_moves: list[str] = []
        for word in words[8:]:
            if word.startswith("["):  # [slot->-id] migrating, [slot-<-id] importing
                open_moves.append(word)
                continue
            start, _, end = word.partition("-")
            slots.append((int(start), int(end or start)))
        out.append(NodeLine(
            id=words[0], address=(host, port), flags=frozenset(words[2].split(",")),
            master_id=None if words[3] == "-" else words[3], config_epoch=int(words[6]),
            link=words[7], slots=tuple(slots), migrating=tuple(open_moves),
        ))
    return out


def cluster_nodes(node: RedisNode) -> list[NodeLine] | None:
    """CLUSTER NODES as `node` sees the cluster; None if unreachable."""
    try:
        with node.client() as client:
            return parse_nodes(str(client.execute_command("CLUSTER", "NODES")))
    except (redis.RedisError, OSError):
        return None


def cluster_info(node: RedisNode) -> dict[str, str] | None:
    try:
        with node.client() as client:
            text = str(client.execute_command("CLUSTER", "INFO"))
    except (redis.RedisError, OSError):
        return None
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def replication_info(node: RedisNode) -> dict[str, Any] | None:
    try:
        with node.client() as client:
            return dict(client.info("replication"))
    except (redis.RedisError, OSError):
        return None


@dataclass(frozen=True)
class NodeView:
    """What one node says, asked in one round trip: CLUSTER INFO, CLUSTER
    NODES and INFO replication (health checks poll every node often)."""

    info: dict[str, str]
    lines: list[NodeLine]
    replication: dict[str, Any]


def node_view(node: RedisNode) -> NodeView | None:
    try:
        with node.client() as client:
            pipe = client.pipeline(transaction=False)
            pipe.execute_command("CLUSTER", "INFO")
            pipe.execute_command("CLUSTER", "NODES")
            pipe.info("replication")
            info, nodes, replication = pipe.execute()
    except (redis.RedisError, OSError):
        return None
    return NodeView(
        info=dict(line.split(":", 1) for line in str(info).splitlines() if ":" in line),
        lines=parse_nodes(str(nodes)), replication=dict(replication))


def cluster_shards(node: RedisNode) -> list[dict[str, Any]] | None:
    """CLUSTER SHARDS as `node` sees it: [{"id", "slots": [(s, e)], "nodes": [...]}]."""
    try:
        with node.client() as client:
            reply = client.execute_command("CLUSTER", "SHARDS")
    except (redis.RedisError, OSError):
        return None
    shards = []
    for entry in reply:
        item = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
        flat = [int(s) for s in item.get("slots", [])]
        nodes = [n if isinstance(n, dict) else dict(zip(n[::2], n[1::2], strict=True))
                 for n in item.get("nodes", [])]
        shards.append({"id": str(item.get("id", "")),
                       "slots": list(zip(flat[::2], flat[1::2], strict=True)), "nodes": nodes})
    return shards


def slot_map(lines: list[NodeLine]) -> dict[tuple[int, int], str]:
    """Slot range -> id of the primary serving it, from one node's CLUSTER NODES."""
    return {rng: line.id for line in lines if line.is_primary for rng in line.slots}


def even_ranges(count: int) -> list[tuple[int, int]]:
    """16384 slots split into `count` contiguous ranges differing by at most one."""
    bounds = [i * SLOTS // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


class RemoteNode(ClusterNode):
    """A node another host runs (systemd): asked and told CLUSTER commands,
    never started or stopped from here. Alive means it answers PING."""

    def __init__(self, *, host: str, port: int, password: str | None = None) -> None:
        super().__init__(datadir=Path(f"{host}:{port}"), host=host, port=port,
                         password=password)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 20.0) -> None:
        if not self.alive():
            raise SetError(f"{self.name} does not answer; start it on its host "
                           f"(systemctl start chat-redis-cluster@{self.port})")

    def _not_here(self) -> None:
        raise SetError(f"{self.name} runs on another host: stop it there "
                       f"(systemctl stop chat-redis-cluster@{self.port})")

    def request_stop(self) -> None:
        self._not_here()

    def stop(self, timeout: float = 15.0) -> None:
        self._not_here()

    def kill(self) -> None:
        self._not_here()
