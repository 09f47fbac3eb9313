"""What a Redis Cluster looks like now, re-read a few times a second.

The Cluster counterpart of server/storage/topology.py, with the same face
(`now`, `required_replicas`, `start`, `close`, `ledger`) plus the shards:
each poll asks every node it knows CLUSTER SHARDS and each shard primary
INFO replication, then

- a slot belongs to the primary a majority of the cluster's nodes name for
  it (server/storage/cluster_view.py); a slot without one refuses writes;
- a write on a shard WAITs for every replica of that shard the cluster could
  promote (known to the primary and not marked failed), counted as the
  Sentinel mode counts them (fencing.acks_needed); a crashed replica is
  waited for (sends answer `unavailable`) until the cluster marks it failed.

When a slot changes hands (a failover, a slot move) `on_change` runs, so
pub/sub resubscribes where the channels now live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from server import metrics
from server.storage.cluster_view import (
    ShardView,
    agreed_owners,
    nodes_named,
    parse_shards,
    tag_for_slot,
)
from server.storage.fencing import acks_needed
from server.storage.ledger import WaitLedger
from server.storage.poller import Poller
from server.storage.redis_conn import Address, RedisHandles
from server.storage.sentinel_view import addr_of
from server.storage.snapshot import POLL_TIMEOUT_S, Snapshot, online_replicas
from server.wire import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A shard primary and what a write there must reach."""

    primary: Address
    #: The `n` of its WAIT.
    acks: int
    ok: bool = True
    reason: str = ""
    online: int = 0


@dataclass
class ClusterState:
    #: Each slot's primary "ip:port" (None: no majority names one).
    owners: list[str | None] = field(default_factory=list)
    shards: dict[str, Shard] = field(default_factory=dict)


def parse_addr(addr: str) -> Address:
    host, _, port = addr.rpartition(":")
    return host, int(port)


class ClusterTopology:
    """Polls the cluster's nodes; answers which primary holds a slot and what it waits for."""

    def __init__(self, handles: RedisHandles, seeds: list[Address], *, interval_ms: int,
                 on_change: Callable[[], None] | None = None) -> None:
        self._handles = handles
        self._known = {addr_of(*seed) for seed in seeds}
        self._interval = interval_ms / 1000
        self._on_change = on_change
        self.now = Snapshot()
        self.state = ClusterState()
        self.max_age_s = 2 * POLL_TIMEOUT_S + self._interval
        self.ledger = WaitLedger()
        self._poller = Poller(self.refresh, interval_s=self._interval, name="cluster-topology")

    # What writes ask ---------------------------------------------------------------

    def required_replicas(self) -> int:
        """For health and the Sentinel-shaped callers: fails when any shard cannot write."""
        self._fresh()
        if not self.now.primary_ok:
            raise errors.Unavailable(f"Redis Cluster not writable: {self.now.reason}")
        return self.now.required_replicas

    def shard_of(self, slot: int) -> Shard:
        """The primary holding `slot` and its WAIT count; Unavailable when it cannot write."""
        self._fresh()
        owners = self.state.owners
        owner = owners[slot] if owners else None
        if owner is None:
            raise errors.Unavailable(f"no majority of nodes names a primary for slot {slot}")
        shard = self.state.shards[owner]
        if not shard.ok:
            raise errors.Unavailable(f"shard primary {owner} not writable: {shard.reason}")
        return shard

    def shards(self) -> list[Shard]:
        return list(self.state.shards.values())

    def first_slots(self) -> dict[str, int]:
        """Each primary ("ip:port") -> the first slot it holds."""
        first: dict[str, int] = {}
        for slot, owner in enumerate(self.state.owners):
            if owner is not None and owner not in first:
                first[owner] = slot
        return first

    def shard_tags(self) -> list[str]:
        """A hash tag in a slot of each shard: keys that reach every shard primary."""
        return [tag_for_slot(slot) for slot in self.first_slots().values()]

    def request_refresh(self) -> None:
        """Poll now (a MOVED or a lost node says the map is stale)."""
        self._poller.wake()

    def _fresh(self) -> None:
        age = time.monotonic() - self.now.taken
        if age > self.max_age_s:
            raise errors.Unavailable(f"Redis Cluster topology not confirmed for {age:.1f} s")

    # Polling ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def refresh(self) -> None:
        try:
            known = len(self._known)
            state, snap = await asyncio.wait_for(self._poll(), POLL_TIMEOUT_S)
            if len(self._known) > known:  # the seeds named more nodes: ask them too
                state, snap = await asyncio.wait_for(self._poll(), POLL_TIMEOUT_S)
        except TimeoutError:
            state, snap = ClusterState(), Snapshot(
                reason=f"topology poll took over {POLL_TIMEOUT_S:g} s")
        self._publish(state, snap)

    async def _poll(self) -> tuple[ClusterState, Snapshot]:
        known = sorted(self._known)
        replies = await asyncio.gather(*(self._shards_of(addr) for addr in known))
        answers = {addr: reply for addr, reply in zip(known, replies, strict=True)
                   if reply is not None}
        named = nodes_named(answers.values())
        self._known |= named
        total = max(len(named), len(answers))
        owners = agreed_owners(list(answers.values()), total)
        primaries = sorted({owner for owner in owners if owner is not None})
        shards = dict(zip(primaries, await asyncio.gather(
            *(self._shard(primary, answers.get(primary)) for primary in primaries)),
            strict=True))
        state = ClusterState(owners=owners, shards=shards)
        uncovered = owners.count(None)
        bad = [f"{addr}: {shard.reason}" for addr, shard in shards.items() if not shard.ok]
        snap = Snapshot(
            primary_ok=not uncovered and not bad and bool(shards),
            primary=",".join(primaries) or None,
            replicas_online=min((s.online for s in shards.values()), default=0),
            required_replicas=min((s.acks for s in shards.values()), default=0),
            # Every node, as the dedupe layout must be one all of them apply.
            members=tuple(sorted(named | set(answers))),
            reason="; ".join(([f"{uncovered} slots without a majority-named primary "
                               f"({len(answers)} of {total} nodes answered)"]
                              if uncovered else []) + bad),
        )
        return state, snap

    async def _shards_of(self, addr: str) -> list[ShardView] | None:
        try:
            reply = await self._handles.node(parse_addr(addr)).execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER SHARDS")
        except (RedisError, OSError) as exc:
            log.debug("CLUSTER SHARDS of %s failed: %s", addr, exc)
            return None
        return parse_shards(reply)

    async def _shard(self, primary: str, own: list[ShardView] | None) -> Shard:
        """The shard of `primary` as the primary itself sees its replicas."""
        addr = parse_addr(primary)
        if own is None:
            return Shard(addr, 0, ok=False, reason="does not answer")
        view = next((shard for shard in own if shard.primary == primary), None)
        if view is None:
            return Shard(addr, 0, ok=False, reason="does not call itself primary")
        try:
            info: dict[str, Any] = await self._handles.node(addr).info("replication")
        except (RedisError, OSError) as exc:
            return Shard(addr, 0, ok=False, reason=f"{type(exc).__name__}: {exc}")
        if info.get("role") != "master":
            return Shard(addr, 0, ok=False, reason="is a replica (failover in progress)")
        online = online_replicas(info)
        required = view.promotable - {primary}
        failed = set(view.replicas) - view.promotable
        return Shard(addr, acks_needed(required, online - {primary}, failed),
                     online=len(online))

    def _publish(self, state: ClusterState, snap: Snapshot) -> None:
        old = self.state
        moved = bool(old.owners) and bool(state.owners) and old.owners != state.owners
        if moved:
            log.warning("cluster slots changed hands: primaries %s -> %s",
                        sorted(old.shards), sorted(state.shards))
            metrics.FAILOVERS.inc()
        if (self.now.primary_ok, self.now.primary, self.now.reason) != (
                snap.primary_ok, snap.primary, snap.reason):
            log.info("redis cluster: writable=%s primaries=%s %s", snap.primary_ok,
                     snap.primary, snap.reason)
        if not state.owners:
            state = old  # nothing answered: keep the map, the snapshot's age guards writes
        self.state = state
        self.now = snap
        metrics.REQUIRED_REPLICAS.set(snap.required_replicas)
        self.ledger.advance()
        if moved and self._on_change is not None:
            self._on_change()
