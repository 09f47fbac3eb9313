"""Which primary does a Sentinel majority name? The one rule, without I/O.

A primary counts only when more than half of ALL configured Sentinels name
it, reachable or not: on the minority side of a partition every reachable
Sentinel may agree on the old primary, and a write acked there is discarded
when that node rejoins as a replica. The server's connections
(redis_conn.py), its topology poll (topology.py), `python -m server check`
and deploy/redis-sentinel (the local set, its status, the rejoin step) all
ask this module, so they cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import TypeVar

#: An address in whatever form the caller holds it: ("host", port) or "host:port".
A = TypeVar("A", bound=Hashable)


def is_majority(count: int, total: int) -> bool:
    """More than half of `total` (2 of 3, 3 of 5, 3 of 4)."""
    return count * 2 > total


def majority(views: Iterable[A | None], total: int) -> A | None:
    """The primary more than half of `total` Sentinels name, or None.

    `views` holds one answer per Sentinel that answered (None: it names no
    primary, or none it believes up); `total` counts every configured
    Sentinel, so an unreachable one is a vote for nobody.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    votes = Counter(view for view in views if view is not None)
    if sum(votes.values()) > total:
        raise ValueError(f"{sum(votes.values())} answers from {total} Sentinels")
    return next((view for view, count in votes.items() if is_majority(count, total)), None)
