"""What a topology poll saw, and the face both topologies show the server.

`Topology` (storage/topology.py: one primary, by URL or as a Sentinel
majority names it) and `ClusterTopology` (storage/cluster_topology.py: a
Redis Cluster, shard by shard) each publish a `Snapshot` after every poll,
and the rest of the server asks either through `TopologyView`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.storage.ledger import WaitLedger
from server.storage.sentinel_majority import is_majority
from server.storage.sentinel_view import addr_of

#: Longest one poll may take (Sentinel and INFO timeouts are below this).
POLL_TIMEOUT_S = 3.0


@dataclass
class Snapshot:
    """One poll's view: the primary (or the Cluster's primaries) and what a write waits for."""

    primary_ok: bool = False
    primary: str | None = None
    replicas_online: int = 0
    required_replicas: int = 0
    sentinels_reachable: int = 0
    sentinels_total: int = 0
    reason: str = "not checked yet"
    taken: float = field(default_factory=time.monotonic)
    down_replicas: set[str] = field(default_factory=set)
    #: The replicas a durable write waits for ("ip:port").
    required: set[str] = field(default_factory=set)
    #: The primary, then every replica online at it or required: the nodes
    #: whose Redis version bounds what a write may use (data/dedupe.py).
    members: tuple[str, ...] = ()

    @property
    def sentinel_majority(self) -> bool:
        return self.sentinels_total == 0 or is_majority(self.sentinels_reachable,
                                                       self.sentinels_total)


class TopologyView(Protocol):
    """What the rest of the server asks of a topology (one primary's, or a Cluster's)."""

    now: Snapshot
    ledger: WaitLedger

    def required_replicas(self) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def online_replicas(info: dict[str, Any]) -> set[str]:
    """Replicas the primary's INFO shows connected and past their initial sync."""
    return {
        addr_of(value["ip"], value["port"])
        for key, value in info.items()
        if key.startswith(("slave", "replica")) and isinstance(value, dict)
        and value.get("state") == "online"
    }
