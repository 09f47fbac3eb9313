"""What one Sentinel says about the set, and the rules read from several of them.

Pure (no I/O): server/storage/topology.py asks the Sentinels and applies these.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

#: Sentinel skips a replica whose link to the primary has been down longer
#: than this many down-after periods (sentinelSelectSlave).
PROMOTABLE_LINK_DOWN_FACTOR = 10


def addr_of(host: Any, port: Any) -> str:
    return f"{host}:{port}"


@dataclass
class SentinelView:
    """One Sentinel's answer: the primary it names and its replicas' state."""

    primary: str | None
    down_after_ms: int
    #: Every replica it lists -> whether it could promote that replica now.
    replicas: dict[str, bool]
    #: The replicas it reports down or disconnected.
    down: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, master: dict[str, Any], replicas: list[dict[str, Any]]) -> SentinelView:
        """From SENTINEL MASTER and SENTINEL REPLICAS as redis-py parses them."""
        down_after = int(master.get("down-after-milliseconds", 30_000))
        usable = master.get("is_master") and not (master.get("is_sdown") or master.get("is_odown"))
        limit = PROMOTABLE_LINK_DOWN_FACTOR * down_after
        down = frozenset(addr_of(r["ip"], r["port"]) for r in replicas
                         if r.get("is_sdown") or r.get("is_odown") or r.get("is_disconnected"))
        return cls(
            primary=addr_of(master["ip"], master["port"]) if usable else None,
            down_after_ms=down_after,
            replicas={
                addr_of(r["ip"], r["port"]): addr_of(r["ip"], r["port"]) not in down
                and int(r.get("slave-priority", 100)) != 0
                and int(r.get("master-link-down-time", 0)) <= limit
                for r in replicas
            },
            down=down,
        )


def majority_listed(views: list[SentinelView]) -> set[str]:
    """The replicas most of `views` list (one Sentinel may remember an old one)."""
    counts = Counter(addr for view in views for addr in view.replicas)
    return {addr for addr, count in counts.items() if count * 2 > len(views)}


def required_replicas(online: set[str], views: list[SentinelView]) -> set[str]:
    """The replicas a durable write must reach (see server/storage/topology.py)."""
    listed = {addr for view in views for addr in view.replicas}
    promotable = {addr for view in views for addr, ok in view.replicas.items() if ok}
    return promotable | (online - listed)
