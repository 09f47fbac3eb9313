"""The Redis Cluster side of a bench run: a local cluster and our servers on it.

`ShardSet` offers what a load step needs of the processes it measures
(`rewrite_aofs`, `pid_groups`), like bench.cluster.Cluster does for the
Sentinel set, so the same steps run against either. `ShardVictim` is the
failover step's target on the cluster: one shard's primary.
"""

from __future__ import annotations

from pathlib import Path

from redis.crc import key_slot

from bench.cluster import rewrite_aofs, server_proc
from deploy.redis_cluster.clusterprobes import Shard
from deploy.redis_cluster.localcluster import LocalCluster
from deploy.redis_sentinel.procutil import SetError
from tests.procs import ServerProc


class ShardSet:
    """A local cluster (deploy/redis-cluster: `shards` x a primary and 2
    replicas, cluster-node-timeout 2 s) and the servers started on it."""

    def __init__(self, root: Path, *, uvloop: bool, shards: int = 3) -> None:
        self.root = root
        self.uvloop = uvloop
        self.local = LocalCluster(root=root / "redis-cluster", shards=shards)
        self.servers: dict[str, ServerProc] = {}

    def start(self) -> None:
        self.local.create()

    def start_server(self, name: str) -> ServerProc:
        proc = server_proc(self.root, name, ["--cluster-nodes", self.local.cluster_nodes_arg],
                           uvloop=self.uvloop)
        self.servers[name] = proc
        return proc.start()

    def rewrite_aofs(self) -> float:
        return rewrite_aofs([n.address for n in self.local.nodes if n.alive()])

    def shards(self) -> list[Shard]:
        try:
            return self.local.shards()
        except SetError:
            return []  # mid-failover: roles unknown for a moment

    def shard_index_of(self, name: str) -> int:
        """The shard holding user `name`'s data (its hash tag's slot)."""
        slot = key_slot(name.encode())
        return next(s.index for s in self.shards()
                    if any(low <= slot <= high for low, high in s.slots))

    def pid_groups(self) -> dict[str, list[int]]:
        """Our servers, and every node by shard and role ("valkey shard-0
        node-3 (primary)"): CPU per shard node."""
        groups = {f"server {name}": [s.proc.pid] for name, s in self.servers.items()
                  if s.proc is not None and s.proc.poll() is None}
        pids = self.local.pids()
        for shard in self.shards():
            for address in shard.nodes:
                node = self.local.node(address)
                role = "primary" if address == shard.primary else "replica"
                if node.name in pids:
                    groups[f"valkey shard-{shard.index} {node.name} ({role})"] = [pids[node.name]]
        return groups

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.local.stop_all()


class ShardVictim:
    """One shard's primary, for bench.failover.run."""

    def __init__(self, shards: ShardSet, index: int = 0) -> None:
        self.cluster = shards.local
        self.index = index
        self.detect_ms = self.cluster.node_timeout_ms
        self.before: Shard | None = None

    def kill(self) -> str:
        self.before = self.cluster.shard(self.index)
        if self.before.primary is None:
            raise SetError(f"shard {self.index} has no primary to kill")
        self.cluster.kill(self.before.primary)
        return f"{self.before.primary[0]}:{self.before.primary[1]}"

    def failed_over(self) -> bool:
        """Every live node names another online primary for the shard (one poll)."""
        assert self.before is not None
        try:
            self.cluster.wait_for_failover(self.before, timeout=0.0)
        except SetError:
            return False
        return True

    def restart(self) -> None:
        # From its own nodes.conf, which says "primary": it rejoins as a replica.
        assert self.before is not None and self.before.primary is not None
        self.cluster.start(self.before.primary, wait=False)

    def affects(self, recipient: str) -> bool:
        assert self.before is not None
        slot = key_slot(recipient.encode())
        return any(low <= slot <= high for low, high in self.before.slots)
