"""Read-only checks of a LocalSet's processes: roles, sync, Sentinel views,
and the waits built on them (the majority's primary, a failover, health).

Each check returns a plain value and treats an unreachable process as "no"
or None, because the callers poll them while nodes die and come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

from server.storage.sentinel_majority import majority

from .nodes import RedisNode, SetError

if TYPE_CHECKING:
    from .sentinelset import LocalSet

Address = tuple[str, int]


def sentinel_views(local: LocalSet) -> list[Address | None]:
    """The primary each Sentinel names (None: unreachable or no answer)."""
    views: list[Address | None] = []
    for sentinel in local.sentinels:
        try:
            with sentinel.client() as client:
                got = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", local.master_name)
            views.append((got[0], int(got[1])) if got else None)
        except (redis.RedisError, OSError):
            views.append(None)
    return views


def role_of(node: RedisNode) -> str | None:
    """"master" or "slave" as the node itself reports, None if unreachable."""
    try:
        with node.client() as client:
            return str(client.info("replication")["role"])
    except (redis.RedisError, OSError):
        return None


def in_sync(node: RedisNode) -> bool:
    """A replica whose link to its primary is up (initial sync done)."""
    try:
        with node.client() as client:
            info = client.info("replication")
    except (redis.RedisError, OSError):
        return False
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def replica_seen_by_all(local: LocalSet, address: Address) -> bool:
    """Every running Sentinel (and at least a majority of all) lists the
    replica and does not think it down: then any of them can promote it."""
    seen, running = 0, 0
    for sentinel in local.sentinels:
        try:
            with sentinel.client() as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", local.master_name)
        except (redis.RedisError, OSError):
            continue
        running += 1
        for rep in replicas:
            info = rep if isinstance(rep, dict) else dict(zip(rep[::2], rep[1::2], strict=True))
            flags = str(info.get("flags", ""))
            # A replica Sentinel only just found is "disconnected" until its
            # link is up; status counts that as down, and so must we.
            usable = "down" not in flags and "disconnected" not in flags
            if (info.get("ip"), int(info.get("port", 0))) == address and usable:
                seen += 1
    return seen == running and seen > len(local.sentinels) // 2


def healthy(local: LocalSet) -> bool:
    """Sentinels agree on a primary, every running node replicates from it,
    every running Sentinel lists every running replica and knows the other
    running Sentinels (so it can vote in a failover)."""
    status = local.status()
    primary = status["primary"]
    if primary is None:
        return False
    live_sentinels = [s for s in status["sentinels"] if s["alive"]]
    for node in status["nodes"]:
        if not node["alive"] or node["address"] == primary:
            continue
        if node["role"] != "slave" or node["link"] != "up" or node["master"] != primary:
            return False
        for sentinel in live_sentinels:
            if node["address"] not in sentinel["replicas_ok"]:
                return False
    return all(s["other_sentinels"] >= len(live_sentinels) - 1 for s in live_sentinels)


def primary_address(local: LocalSet) -> Address:
    """The primary a majority of all configured Sentinels names."""
    views = sentinel_views(local)
    primary = majority(views, len(local.sentinels))
    if primary is not None:
        return primary
    raise SetError(f"no Sentinel majority names a primary (views: {views})")


def wait_for_failover(local: LocalSet, old_primary: Address, timeout: float) -> Address:
    """Wait until a Sentinel majority names a primary other than
    old_primary and that node acts as primary; return its address."""
    found: list[Address] = []

    def done() -> bool:
        try:
            new = primary_address(local)
        except SetError:
            return False
        if new != old_primary and role_of(local.nodes[local.node_index(new)]) == "master":
            found.append(new)
            return True
        return False

    wait_until(done, timeout, f"no failover away from {old_primary[0]}:{old_primary[1]}")
    return found[-1]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds; SetError("`what` within ...") after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SetError(f"{what} within {timeout:g}s")
        time.sleep(0.1)
