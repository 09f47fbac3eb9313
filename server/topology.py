"""What the Redis set looks like now, re-read a few times a second.

Durable writes wait for every replica that is online at the primary and
not reported down by Sentinel: whichever replica Sentinel promotes then
holds every acknowledged write. Without a majority of Sentinels in reach
this instance may sit on the wrong side of a partition, so it refuses
writes instead of acking what the other side's failover would discard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from server import errors, metrics
from server.redis_conn import RedisHandles

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    primary_ok: bool = False
    primary: str | None = None
    replicas_online: int = 0
    required_replicas: int = 0
    sentinels_reachable: int = 0
    sentinels_total: int = 0
    reason: str = "not checked yet"
    down_replicas: set[str] = field(default_factory=set)

    @property
    def sentinel_majority(self) -> bool:
        return self.sentinels_total == 0 or self.sentinels_reachable * 2 > self.sentinels_total


class Topology:
    """Polls the primary's INFO and each Sentinel; answers health and wait counts."""

    def __init__(
        self, handles: RedisHandles, *, master_name: str, interval_ms: int,
        on_failover: Callable[[str | None, str], None] | None = None,
    ) -> None:
        self._handles = handles
        self._master = master_name
        self._interval = interval_ms / 1000
        self._on_failover = on_failover
        self.now = Snapshot(sentinels_total=len(handles.sentinels))
        self._task: asyncio.Task[None] | None = None

    def required_replicas(self) -> int:
        """Replicas a durable write must reach; raises when it cannot be made."""
        snap = self.now
        if not snap.primary_ok:
            raise errors.Unavailable(f"no Redis primary: {snap.reason}")
        if not snap.sentinel_majority:
            raise errors.Unavailable("no majority of Sentinels reachable")
        return snap.required_replicas

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="topology")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def refresh(self) -> None:
        snap = Snapshot(sentinels_total=len(self._handles.sentinels))
        down: set[str] = set()
        if self._handles.sentinels:
            views = await asyncio.gather(
                *(self._sentinel_view(client) for client in self._handles.sentinels)
            )
            for view in views:
                if view is not None:
                    snap.sentinels_reachable += 1
                    down |= view
        try:
            info: dict[str, Any] = await self._handles.primary.info("replication")
        except (RedisError, OSError) as exc:
            snap.reason = f"{type(exc).__name__}: {exc}"
            self._publish(snap)
            return
        if info.get("role") != "master":
            snap.reason = "the node we reached is a replica (failover in progress)"
            self._publish(snap)
            return
        online = [
            f"{value['ip']}:{value['port']}"
            for key, value in info.items()
            if key.startswith(("slave", "replica")) and isinstance(value, dict)
            and value.get("state") == "online"
        ]
        conn = self._handles.primary.connection_pool.connection_kwargs
        snap.primary = f"{conn.get('host', '?')}:{conn.get('port', '?')}"
        if self._handles.sentinel is not None:
            try:
                host, port = await self._handles.sentinel.discover_master(self._master)
                snap.primary = f"{host}:{port}"
            except (RedisError, OSError) as exc:
                log.debug("discover_master failed: %s", exc)
        snap.primary_ok = True
        snap.replicas_online = len(online)
        snap.down_replicas = down
        snap.required_replicas = sum(1 for addr in online if addr not in down)
        snap.reason = "" if snap.required_replicas else "no replica in sync"
        self._publish(snap)

    async def _sentinel_view(self, client: Any) -> set[str] | None:
        """Replicas this Sentinel reports down, or None if it does not answer."""
        try:
            replicas = await client.sentinel_slaves(self._master)
        except (RedisError, OSError):
            return None
        return {
            f"{r['ip']}:{r['port']}" for r in replicas
            if r.get("is_sdown") or r.get("is_odown") or r.get("is_disconnected")
        }

    def _publish(self, snap: Snapshot) -> None:
        old = self.now
        if snap.primary is None:
            snap.primary = old.primary  # unknown now: keep the last one we saw
        if snap.primary and old.primary and snap.primary != old.primary:
            log.warning("failover: primary %s -> %s", old.primary, snap.primary)
            metrics.FAILOVERS.inc()
            if self._on_failover is not None:
                self._on_failover(old.primary, snap.primary)
        if old.primary_ok != snap.primary_ok or old.required_replicas != snap.required_replicas:
            log.info(
                "redis topology: primary_ok=%s primary=%s replicas in sync=%d sentinels=%d/%d %s",
                snap.primary_ok, snap.primary, snap.required_replicas,
                snap.sentinels_reachable, snap.sentinels_total, snap.reason,
            )
        metrics.REQUIRED_REPLICAS.set(snap.required_replicas)
        self.now = snap
