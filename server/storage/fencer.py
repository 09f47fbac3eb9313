"""Fencing returning Redis nodes: observe them, then act on server/storage/fencing.py's plan.

Every step is idempotent, so instances may race: the priority to restore is
recorded with HSETNX on the primary (keys.FENCES) before the fence is set
and again after it, and it is made durable with WAIT like a send, so a fence
left by an instance that crashed is lifted by any other. A lift restores the
recorded priority, drops the record, and puts the record back if the node
shows priority 0 again (another instance fenced it meanwhile), so a fence
never ends up looking like an operator's deliberate priority 0.

Where CONFIG or REPLICAOF is refused (NOPERM, an unknown or renamed
command) the refusal is logged once and the node is treated as today:
required while Sentinel could promote it; fencing is tried again after
REFUSAL_RETRY_S. Any other error (READONLY during a failover, OOM, BUSY)
only fails this step; the next poll retries it.

The poll only observes and decides; the actions (a fence's record, its WAIT
of up to RECORD_WAIT_MS, CONFIG SET on a node that may be slow or paused)
run in their own task, one plan at a time, so they never hold up the poll
that publishes the view writes use for more than FENCE_GRACE_S. A fence
taken within that grace leaves the node out in this poll (as when fences
ran inside it); otherwise it stays in the required set the poll returns
(the rule without fencing) and the poll after the fence, which a fence
that took wakes, leaves it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server import keys, metrics
from server.storage.fencing import NodeState, Plan, decide, is_refusal, replica_progress
from server.storage.ledger import WaitLedger

log = logging.getLogger(__name__)

#: Longest a node may take to answer INFO + CONFIG GET in one poll.
NODE_TIMEOUT_S = 0.5
#: WAIT of a fence record: it must reach the replicas a send reaches.
RECORD_WAIT_MS = 500
#: The poll waits this long for a fence it planned: taken by then, the node is
#: left out in this poll (as when fences ran inside it); else it stays required.
FENCE_GRACE_S = 0.5
#: A refused CONFIG (an ACL) is tried again after this long: the operator may fix it.
REFUSAL_RETRY_S = 60.0
#: fence_record.lua: the record is taken only while an anchor stays unfenced.
FENCE_RECORD = (Path(__file__).parent / "scripts" / "fence_record.lua").read_text()


class Fencer:
    """Acts for one server instance; any number of them may run at once."""

    def __init__(self, node: Any, ledger: WaitLedger, *, lift_after_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: node(("ip", port)) -> a Redis client of that node.
        self._node = node
        self._ledger = ledger
        #: A node is lifted only after being required and in sync this long:
        #: another instance may still run a write that read a required set
        #: without it (its view lives up to the topology's max age, its WAIT
        #: up to the ack timeout); this instance's own are in the ledger.
        self._lift_after_s = lift_after_s
        self._clock = clock
        #: addr -> the epoch since which it has been in every published required set.
        self._required_since: dict[str, int] = {}
        #: addr -> when it was first seen in sync and required, while it stays so.
        self._healthy_since: dict[str, float] = {}
        #: addr -> polls in a row it was not online at the primary.
        self._absent: dict[str, int] = {}
        #: command -> when it was last refused (NOPERM, unknown command).
        self._refused: dict[str, float] = {}
        #: The plan being acted on, if any: one at a time, never inside a poll.
        self._acting: asyncio.Task[bool] | None = None
        #: The nodes the running plan has fenced so far.
        self._fenced_now: set[str] = set()
        #: Called when a fence took (the topology polls again at once).
        self.on_acted: Callable[[], None] | None = None

    def client(self, addr: str) -> Redis:
        host, _, port = addr.rpartition(":")
        client: Redis = self._node((host, int(port)))
        return client

    def published(self, required: set[str], epoch: int) -> None:
        """The topology published `required` as snapshot `epoch`."""
        self._required_since = {
            addr: self._required_since.get(addr, epoch) for addr in required
        }

    async def required(self, primary: str, info: dict[str, Any], listed: set[str],
                       promotable: set[str], base: set[str], *,
                       raw_records: dict[str, str] | None = None) -> set[str]:
        """The required set after fencing; acts on the plan on the way.

        `raw_records`: the primary's fence records (HGETALL) if the caller
        read them with its INFO; None reads them here."""
        progress = replica_progress(info)
        records = _parse_records(raw_records) if raw_records is not None \
            else await self._records(primary)
        if records is None:
            return base
        online = {addr for addr, (up, _) in progress.items() if up}
        # `listed`: by a majority of the Sentinel views that name the primary.
        # A record or one Sentinel's memory of an address alone is not acted on.
        addrs = (listed | online) - {primary}
        self._absent = {addr: 0 if addr in online else self._absent.get(addr, 0) + 1
                        for addr in addrs}
        replid = info.get("master_replid")
        nodes = await asyncio.gather(*(
            self._observe(addr, progress.get(addr, (False, False)), records.get(addr), replid,
                          promotable=addr in promotable, listed=addr in listed)
            for addr in sorted(addrs)
        ))
        metrics.FENCED_REPLICAS.set(sum(1 for node in nodes if node.fenced))
        plan = decide(primary, list(nodes), base, allowed=not self._refusing("CONFIG"))
        now = self._clock()
        self._healthy_since = {addr: self._healthy_since.get(addr, now) for addr in plan.lift}
        idle = self._acting is None or self._acting.done()
        if not idle or not (plan.repoint or plan.fence or plan.lift or plan.forget):
            # Busy: this plan is dropped; the poll after the running one ends decides anew.
            return set(plan.required | plan.excluded_if_fenced)
        self._fenced_now = set()
        acting = self._acting = asyncio.create_task(
            self._act(primary, plan, len(plan.required | online)), name="fencer")
        acting.add_done_callback(self._acted)
        if plan.excluded_if_fenced:
            await asyncio.wait({acting}, timeout=FENCE_GRACE_S)
        fenced = self._fenced_now if acting.done() and not acting.cancelled() else set()
        # Not fenced (yet): waited for as without fencing; a later poll sees the fence.
        return set(plan.required | (plan.excluded_if_fenced - fenced))

    async def settled(self) -> None:
        """Wait until the plan being acted on (if any) is done."""
        if self._acting is not None:
            await asyncio.gather(self._acting, return_exceptions=True)

    async def close(self) -> None:
        """Stop acting; a fence half-taken is finished or lifted by any instance later."""
        if self._acting is not None:
            self._acting.cancel()
            await asyncio.gather(self._acting, return_exceptions=True)
            self._acting = None

    def _acted(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("fencing actions failed: %s", exc, exc_info=exc)
        elif task.result() and self.on_acted is not None:
            self.on_acted()  # a fence took: the next poll may leave the node out

    async def _records(self, primary: str) -> dict[str, int] | None:
        try:
            raw = await self.client(primary).hgetall(keys.FENCES)
        except (RedisError, OSError) as exc:
            log.debug("fence records unreadable on %s: %s", primary, exc)
            return None
        return _parse_records(raw)

    async def _observe(self, addr: str, progress: tuple[bool, bool], record: int | None,
                       primary_replid: str | None, *, promotable: bool,
                       listed: bool) -> NodeState:
        online, caught_up = progress
        base = NodeState(addr=addr, promotable=promotable, online=online, caught_up=caught_up,
                         record=record, listed=listed, absent_polls=self._absent.get(addr, 0))
        try:
            async with asyncio.timeout(NODE_TIMEOUT_S):
                pipe = self.client(addr).pipeline(transaction=False)
                pipe.info("replication")
                pipe.config_get("replica-priority")
                info, config = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError):
            return base
        if isinstance(info, Exception) or not isinstance(info, dict):
            return base
        priority: int | None = None
        if isinstance(config, ResponseError):
            self._failed("CONFIG", addr, config)
        elif isinstance(config, dict) and str(config.get("replica-priority", "")).isdigit():
            priority = int(config["replica-priority"])
        following = None
        if info.get("role") == "slave":
            following = f"{info.get('master_host')}:{info.get('master_port')}"
        # SLAVEOF NO ONE keeps the old history as replid2: a node Sentinel is
        # promoting from the primary's history, not a stale one come back.
        promoting = info.get("role") == "master" and primary_replid is not None \
            and info.get("master_replid2") == primary_replid
        return NodeState(addr=addr, promotable=promotable, online=online, caught_up=caught_up,
                         reachable=True, role=str(info.get("role")), following=following,
                         priority=priority, record=record, promoting=promoting,
                         listed=listed, syncing=str(info.get("master_sync_in_progress")) == "1",
                         absent_polls=self._absent.get(addr, 0))

    async def _act(self, primary: str, plan: Plan, acks: int) -> bool:
        """Carry out `plan`; True if a fence took."""
        for addr in plan.repoint:
            await self._repoint(addr, primary)
        for addr, priority in plan.fence.items():
            if await self._fence(addr, priority, primary, acks, plan.anchors.get(addr)):
                self._fenced_now.add(addr)
        now = self._clock()
        for addr, priority in plan.lift.items():
            since = self._required_since.get(addr)
            # Only once every write, of any instance, that read a required set
            # without it is done: ours by the ledger, others' by the clock.
            waited = now - self._healthy_since.get(addr, now) >= self._lift_after_s
            if since is not None and self._ledger.none_before(since) \
                    and (waited or addr in plan.urgent):
                await self._lift(addr, priority, primary)
        for addr in plan.forget:
            await self._lift(addr, None, primary)
        return bool(self._fenced_now)

    async def _fence(self, addr: str, priority: int, primary: str, wait_for: int,
                     anchors: frozenset[str] | None) -> bool:
        """Record, then set priority 0, then record again; True if fenced."""
        store = self.client(primary)
        try:
            taken = await store.eval(
                FENCE_RECORD, 1, keys.FENCES, addr, priority, *sorted(anchors or ()))
            if int(taken) != 1:
                log.info("not fencing %s: every replica that holds the acked writes is "
                         "being fenced by another instance", addr)
                return False
            reached = int(await store.execute_command(  # type: ignore[no-untyped-call]
                "WAIT", wait_for, RECORD_WAIT_MS))
            if reached < wait_for:
                log.info("fence of %s not recorded on %d replicas (%d); not fenced",
                         addr, wait_for, reached)
                return False
            await self.client(addr).config_set("replica-priority", 0)
            await store.hsetnx(keys.FENCES, addr, priority)
        except ResponseError as exc:
            self._failed("CONFIG", addr, exc)
            return False
        except (RedisError, OSError) as exc:
            log.info("fencing %s failed: %s", addr, exc)
            return False
        log.warning("fenced returning Redis node %s (replica-priority 0, was %d) until it "
                    "is in sync with %s", addr, priority, primary,
                    extra={"node": addr, "primary": primary})
        return True

    async def _lift(self, addr: str, priority: int | None, primary: str) -> None:
        """Restore `priority` (None: it is back already), drop the record."""
        store = self.client(primary)
        try:
            if priority is not None:
                await self.client(addr).config_set("replica-priority", priority)
                await self._rewrite_config(addr)
            kept = await store.hget(keys.FENCES, addr)
            await store.hdel(keys.FENCES, addr)
            config = await self.client(addr).config_get("replica-priority")
            if str(config.get("replica-priority")) == "0" and kept is not None:
                # Another instance fenced it meanwhile: its fence keeps a record.
                await store.hsetnx(keys.FENCES, addr, kept)
                return
        except ResponseError as exc:
            self._failed("CONFIG", addr, exc)
            return
        except (RedisError, OSError) as exc:
            log.info("lifting the fence of %s failed: %s", addr, exc)
            return
        if priority is not None:
            log.warning("lifted the fence of Redis node %s (replica-priority %d): in sync "
                        "with %s", addr, priority, primary,
                        extra={"node": addr, "primary": primary})

    async def _rewrite_config(self, addr: str) -> None:
        """Persist the restored priority: the file may hold the fence (Sentinel
        rewrites it), and a restart must not bring back a priority 0 whose
        record is gone, which would read as an operator's choice."""
        try:
            await self.client(addr).execute_command(  # type: ignore[no-untyped-call]
                "CONFIG", "REWRITE")
        except ResponseError as exc:
            log.debug("CONFIG REWRITE on %s: %s", addr, exc)  # e.g. started without a file

    async def _repoint(self, addr: str, primary: str) -> None:
        host, _, port = primary.rpartition(":")
        try:
            await self.client(addr).execute_command(  # type: ignore[no-untyped-call]
                "REPLICAOF", host, port)
        except ResponseError as exc:
            self._failed("REPLICAOF", addr, exc)
            return
        except (RedisError, OSError) as exc:
            log.info("pointing %s at %s failed: %s", addr, primary, exc)
            return
        log.warning("pointed Redis node %s at the primary %s (it claimed another role)",
                    addr, primary, extra={"node": addr, "primary": primary})

    def _refusing(self, command: str) -> bool:
        when = self._refused.get(command)
        return when is not None and self._clock() - when < REFUSAL_RETRY_S

    def _failed(self, command: str, addr: str, exc: ResponseError) -> None:
        """A refusal turns fencing off for a while (logged once); anything
        else (READONLY, OOM, BUSY) only fails this step."""
        if not is_refusal(exc):
            log.info("%s on %s failed (%s): retried next poll", command, addr, exc)
            return
        if command not in self._refused:
            log.warning("Redis refused %s on %s (%s): returning nodes are not fenced; "
                        "a write waits for them until they are in sync", command, addr, exc)
        self._refused[command] = self._clock()


def _parse_records(raw: dict[Any, Any]) -> dict[str, int]:
    """addr -> the priority a fence saved, from the records hash."""
    return {str(addr): int(value) for addr, value in raw.items() if str(value).isdigit()}
