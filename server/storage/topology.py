"""What the Redis set looks like now, re-read a few times a second.

A durable write must reach every replica that Sentinel could promote next,
so whichever one it promotes holds every acknowledged write. Each poll asks
every Sentinel which node is primary (a majority must agree) and how it sees
the replicas, and asks that primary for its INFO. A replica is required
(the write WAITs for it) when:

- a Sentinel we reach could promote it: it is up and connected there, not
  s_down/o_down, not priority 0, and its replication link has not been down
  longer than Sentinel's own limit for promotion (10 x down-after). This
  also holds while it still resyncs or is still being repointed after a
  failover; the write answers `unavailable` until it catches up, because
  acking without it would let Sentinel promote a replica without the write.
- or it is online at the primary and no Sentinel we reach lists it yet (a
  replica just added).

A replica that every Sentinel we reach reports down or disconnected cannot
be promoted, so it is left out: a crashed replica at once (its Sentinel
links close), a frozen or cut-off one after down-after-milliseconds; until
then its WAIT times out and sends answer `unavailable`. With no replica
left the primary acks alone (/healthz `degraded`). WAIT counts acks, not
names: its `n` adds every other replica online at the primary
(server/fencing.acks_needed), so no unrequired ack stands in for a required one.

Without a majority of Sentinels in reach this instance may sit on the wrong
side of a partition, so it refuses writes instead of acking what the other
side's failover would discard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server import keys, metrics
from server.storage.failures import again_if_closed
from server.storage.fencer import Fencer
from server.storage.fencing import acks_needed
from server.storage.ledger import WaitLedger
from server.storage.poller import Poller
from server.storage.redis_conn import PrimaryPool, RedisHandles
from server.storage.sentinel_majority import majority
from server.storage.sentinel_view import SentinelView, addr_of, majority_listed, required_replicas
from server.storage.snapshot import POLL_TIMEOUT_S, Snapshot, online_replicas
from server.wire import errors

log = logging.getLogger(__name__)

#: Slack for a write's round trip around its WAIT (see the fencer's lift delay).
WRITE_SLACK_S = 1.0
#: Poll interval while no primary is confirmed (s): a few Sentinel queries
#: more per second, only during an outage.
OUTAGE_INTERVAL_S = 0.1


class Topology:
    """Polls the Sentinels and the primary's INFO; answers health and wait counts."""

    def __init__(
        self, handles: RedisHandles, *, master_name: str, interval_ms: int,
        on_failover: Callable[[str | None, str], None] | None = None, ack_timeout_ms: int = 1000,
    ) -> None:
        self._handles = handles
        self._master = master_name
        self._interval = interval_ms / 1000
        self._on_failover = on_failover
        self.now = Snapshot(sentinels_total=len(handles.sentinels))
        self._poller = Poller(self.refresh, interval_s=self._poll_interval, name="topology")
        #: A view older than this is not trusted for a write (a stuck poll
        #: must not keep a majority that is gone).
        self.max_age_s = 2 * POLL_TIMEOUT_S + self._interval
        #: Which snapshot each durable write in flight read (see server/storage/fencer.py).
        self.ledger = WaitLedger()
        # A fence is lifted once every instance's write that may have read a
        # required set without the node has ended: its view is at most
        # max_age_s old when the write starts, its WAIT at most the ack timeout.
        lift_after_s = self.max_age_s + ack_timeout_ms / 1000 + WRITE_SLACK_S
        self._fencer = Fencer(handles.node, self.ledger, lift_after_s=lift_after_s) \
            if handles.sentinels else None
        if self._fencer is not None:
            self._fencer.on_acted = self._poller.wake

    def required_replicas(self) -> int:
        """Replicas a durable write must reach; raises when it cannot be made."""
        snap = self.now
        age = time.monotonic() - snap.taken
        if age > self.max_age_s:
            raise errors.Unavailable(f"Redis topology not confirmed for {age:.1f} s")
        if not snap.primary_ok:
            raise errors.Unavailable(f"no Redis primary: {snap.reason}")
        if not snap.sentinel_majority:
            raise errors.Unavailable("no majority of Sentinels reachable")
        return snap.required_replicas

    async def start(self) -> None:
        await self._poller.start()

    async def close(self) -> None:
        await self._poller.close()
        if self._fencer is not None:
            await self._fencer.close()

    def _poll_interval(self) -> float:
        # Without a primary (a failover under way) every poll that finds the
        # new one sooner ends the outage sooner.
        return self._interval if self.now.primary_ok else min(self._interval, OUTAGE_INTERVAL_S)

    async def refresh(self) -> None:
        poll = self._refresh_sentinel() if self._handles.sentinels else self._refresh_single()
        try:
            snap = await asyncio.wait_for(poll, POLL_TIMEOUT_S)
        except TimeoutError:
            age = time.monotonic() - self.now.taken
            if self.now.primary_ok and age <= self.max_age_s:
                # No answer is not "no primary": the last view stands until
                # its age passes max_age_s, when required_replicas refuses it.
                log.info("topology poll took over %g s; keeping the view of %.1f s ago",
                         POLL_TIMEOUT_S, age)
                return
            snap = Snapshot(sentinels_total=len(self._handles.sentinels),
                            reason=f"topology poll took over {POLL_TIMEOUT_S:g} s")
        await self._publish(snap)

    async def _refresh_single(self) -> Snapshot:
        """One Redis by URL: wait for the replicas its INFO shows online."""
        snap = Snapshot()
        info = await self._info(self._handles.primary, snap)
        if info is None:
            return snap
        conn = self._handles.primary.get_connection_kwargs()
        snap.primary = addr_of(conn.get("host", "?"), conn.get("port", "?"))
        online = online_replicas(info)
        snap.primary_ok = True
        snap.replicas_online = len(online)
        snap.required = online
        snap.required_replicas = len(online)
        snap.members = (snap.primary, *sorted(online))
        snap.reason = "" if online else "no replica in sync"
        return snap

    async def _refresh_sentinel(self) -> Snapshot:
        snap = Snapshot(sentinels_total=len(self._handles.sentinels))
        answers = await asyncio.gather(
            *(self._sentinel_view(client) for client in self._handles.sentinels)
        )
        views = [view for view in answers if view is not None]
        snap.sentinels_reachable = len(views)
        primary = majority((view.primary for view in views), snap.sentinels_total)
        if primary is None:
            votes = Counter(view.primary for view in views if view.primary is not None)
            snap.reason = (
                f"no majority of {snap.sentinels_total} Sentinels names a primary "
                f"({snap.sentinels_reachable} reachable, votes {dict(votes)})"
            )
            return snap
        # Only Sentinels that name the same primary speak about its replicas:
        # one that has not heard of a failover yet lists the new primary
        # among the replicas of the old one.
        views = [view for view in views if view.primary == primary]
        host, _, port = primary.rpartition(":")
        # INFO of the node the majority names, not of whichever node a pooled
        # connection happens to point at; the fence records in the same round trip.
        info, records = await self._primary_state(self._handles.node((host, int(port))), snap)
        if info is None:
            return snap
        snap.primary = primary
        online = online_replicas(info)
        snap.required = required_replicas(online, views) - {primary}
        if self._fencer is not None:
            # A returning node is fenced instead of waited for (server/storage/fencing.py).
            snap.required = await self._fencer.required(
                primary, info, majority_listed(views),
                {addr for view in views for addr, ok in view.replicas.items() if ok},
                snap.required, raw_records=records,
            ) - {primary}
        snap.down_replicas = {
            addr for view in views for addr, ok in view.replicas.items() if not ok
        } - snap.required
        snap.primary_ok = True
        snap.replicas_online = len(online)
        down = frozenset.intersection(*(view.down for view in views))
        snap.required_replicas = acks_needed(snap.required, online - {primary}, set(down))
        snap.members = (primary, *sorted((online | snap.required) - {primary}))
        snap.reason = "" if snap.required else "no replica in sync"
        return snap

    async def _info(self, client: Any, snap: Snapshot) -> dict[str, Any] | None:
        """INFO replication of a node that acts as primary, else None (reason set)."""
        try:
            # Asked again on a connection Sentinel closed when it promoted the node.
            info: dict[str, Any] = await again_if_closed(lambda: client.info("replication"))
        except (RedisError, OSError) as exc:
            snap.reason = f"{type(exc).__name__}: {exc}"
            return None
        return _acting_primary(info, snap)

    async def _primary_state(self, client: Any, snap: Snapshot
                             ) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
        """INFO replication of a node that acts as primary (else None, reason
        set) and its fence records (None when unreadable), in one round trip:
        during an outage each await of a poll waits behind the clients'
        retries, so the fewer a poll makes, the sooner it sees a new primary.
        """
        if self._fencer is None:
            return await self._info(client, snap), None
        async def both() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.info("replication")
            pipe.hgetall(keys.FENCES)
            answers: list[Any] = await pipe.execute(raise_on_error=False)
            return answers

        try:
            # Asked again on a connection Sentinel closed when it promoted the node.
            info, records = await again_if_closed(both)
        except (RedisError, OSError) as exc:
            snap.reason = f"{type(exc).__name__}: {exc}"
            return None, None
        if isinstance(info, Exception):
            snap.reason = f"{type(info).__name__}: {info}"
            return None, None
        if _acting_primary(info, snap) is None:
            return None, None
        return info, (None if isinstance(records, Exception) else records)

    async def _sentinel_view(self, client: Any) -> SentinelView | None:
        """What one Sentinel says, or None if it does not answer (one round trip)."""
        try:
            pipe = client.pipeline(transaction=False)
            pipe.sentinel_master(self._master)
            pipe.sentinel_slaves(self._master)
            master, replicas = await pipe.execute()
        except (RedisError, OSError):
            return None
        return SentinelView.parse(master, replicas)

    async def _publish(self, snap: Snapshot) -> None:
        old = self.now
        if snap.primary is None:
            snap.primary = old.primary  # unknown now: keep the last one we saw
            snap.members = old.members
        if snap.primary and old.primary and snap.primary != old.primary:
            log.warning("failover: primary %s -> %s", old.primary, snap.primary,
                        extra={"old_primary": old.primary, "new_primary": snap.primary})
            metrics.FAILOVERS.inc()
            # Pooled connections may still point at the old primary, which
            # takes writes if it is alive on the other side of a partition.
            primary = self._handles.primary
            try:
                if not isinstance(primary, Redis):
                    raise TypeError("a Sentinel primary is one node's client")
                pool = primary.connection_pool
                if isinstance(pool, PrimaryPool):
                    host, _, port = snap.primary.rpartition(":")
                    await pool.primary_moved((host, int(port)))
                else:
                    await pool.disconnect(inuse_connections=False)
            except (RedisError, OSError) as exc:
                log.debug("dropping connections to the old primary failed: %s", exc)
            if self._on_failover is not None:
                self._on_failover(old.primary, snap.primary)
        if (old.primary_ok, old.required, old.sentinels_reachable) != (
            snap.primary_ok, snap.required, snap.sentinels_reachable
        ):
            log.info(
                "redis topology: primary_ok=%s primary=%s replicas required=%d %s "
                "sentinels=%d/%d %s",
                snap.primary_ok, snap.primary, snap.required_replicas, sorted(snap.required),
                snap.sentinels_reachable, snap.sentinels_total, snap.reason,
            )
        metrics.REQUIRED_REPLICAS.set(snap.required_replicas)
        self.now = snap
        epoch = self.ledger.advance()
        if self._fencer is not None:
            self._fencer.published(snap.required, epoch)


def _acting_primary(info: dict[str, Any], snap: Snapshot) -> dict[str, Any] | None:
    """`info` if the node acts as primary, else None (reason set)."""
    if info.get("role") != "master":
        snap.reason = "the node we reached is a replica (failover in progress)"
        return None
    return info
