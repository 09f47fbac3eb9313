"""server/fencer.Fencer against hand-made fake nodes: races, a crashed
instance's fence, the lift ordered after older waits, a refused CONFIG.

fakeredis has no INFO replication, CONFIG SET replica-priority or REPLICAOF,
so each node here is a few fields and the commands the fencer sends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.exceptions import ReadOnlyError, ResponseError

from server import keys
from server.storage.fencer import REFUSAL_RETRY_S, Fencer
from server.storage.ledger import WaitLedger

P, A, C = "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"


class FakeNode:
    def __init__(self, addr: str, *, role: str = "slave", following: str | None = P,
                 priority: int = 100, deny_config: bool = False) -> None:
        self.addr, self.role, self.following = addr, role, following
        self.priority = priority
        self.deny_config = deny_config
        self.hashes: dict[str, dict[str, str]] = {}
        self.commands: list[tuple[Any, ...]] = []
        self.replid2 = "0" * 40
        #: Runs after a CONFIG SET: another instance acting in between.
        self.after_set: Any = None
        #: Raised by the next CONFIG SET (once).
        self.set_error: Exception | None = None
        self.syncing = False

    # The primary's data (only the fence records live here).
    async def hgetall(self, key: str) -> dict[str, str]:
        await asyncio.sleep(0)  # lets instances polling at once interleave
        return dict(self.hashes.get(key, {}))

    async def eval(self, script: str, numkeys: int, key: str, addr: str, priority: Any,
                   *anchors: str) -> int:
        """fence_record.lua (tests/unit/test_fence_record.py runs the real one)."""
        table = self.hashes.setdefault(key, {})
        if addr in table:
            return 1
        if any(anchor not in table for anchor in anchors):
            table[addr] = str(priority)
            return 1
        return 0

    async def hget(self, key: str, field: str) -> str | None:
        return self.hashes.get(key, {}).get(field)

    async def hsetnx(self, key: str, field: str, value: Any) -> int:
        table = self.hashes.setdefault(key, {})
        if field in table:
            return 0
        table[field] = str(value)
        return 1

    async def hdel(self, key: str, field: str) -> int:
        return 1 if self.hashes.get(key, {}).pop(field, None) is not None else 0

    async def config_get(self, name: str) -> dict[str, str]:
        if self.deny_config:
            raise ResponseError("NOPERM this user has no permissions to run 'config|get'")
        return {"replica-priority": str(self.priority)}

    async def config_set(self, name: str, value: Any) -> bool:
        if self.deny_config:
            raise ResponseError("NOPERM")
        if self.set_error is not None:
            error, self.set_error = self.set_error, None
            raise error
        self.commands.append(("CONFIG SET", name, value))
        self.priority = int(value)
        if self.after_set is not None:
            self.after_set()
        return True

    async def execute_command(self, *args: Any) -> Any:
        self.commands.append(args)
        if args[0] == "WAIT":
            return args[1]  # every replica acks the record
        if args[0] == "REPLICAOF":
            self.role, self.following = "slave", f"{args[1]}:{args[2]}"
        return "OK"

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "master_replid2": self.replid2,
                               "master_sync_in_progress": int(self.syncing)}
        if self.following:
            host, _, port = self.following.rpartition(":")
            out.update(master_host=host, master_port=port)
        return out

    def pipeline(self, transaction: bool = False) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    def info(self, section: str) -> None:
        pass

    def config_get(self, name: str) -> None:
        pass

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        await asyncio.sleep(0)
        try:
            config: Any = await self.node.config_get("replica-priority")
        except ResponseError as exc:
            config = exc
        return [self.node.info(), config]


class World:
    """Three fake nodes: P primary, A in sync, C as the test sets it up."""

    def __init__(self, **c: Any) -> None:
        self.nodes = {P: FakeNode(P, role="master", following=None), A: FakeNode(A),
                      C: FakeNode(C, **c)}
        self.online = {A}

    def client(self, address: tuple[str, int]) -> FakeNode:
        return self.nodes[f"{address[0]}:{address[1]}"]

    def primary_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"role": "master", "master_repl_offset": 1000,
                                "master_replid": "p" * 40}
        for i, addr in enumerate(sorted(self.online)):
            host, _, port = addr.rpartition(":")
            info[f"slave{i}"] = {"ip": host, "port": int(port), "state": "online",
                                 "offset": 1000, "lag": 0}
        return info

    async def poll(self, fencer: Fencer, ledger: WaitLedger) -> set[str]:
        listed = {A, C}
        required = await fencer.required(P, self.primary_info(), listed, listed, set(listed))
        fencer.published(required, ledger.advance())
        return required

    @property
    def records(self) -> dict[str, str]:
        return self.nodes[P].hashes.setdefault(keys.FENCES, {})


def fencer_of(world: World) -> tuple[Fencer, WaitLedger]:
    ledger = WaitLedger()
    return Fencer(world.client, ledger), ledger


async def test_old_primary_is_recorded_fenced_repointed_and_left_out() -> None:
    world = World(role="master", following=None, priority=100)
    fencer, ledger = fencer_of(world)
    assert await world.poll(fencer, ledger) == {A}
    assert world.records == {C: "100"}
    assert world.nodes[C].priority == 0
    assert ("REPLICAOF", "10.0.0.1", "6379") in world.nodes[C].commands


async def test_two_instances_racing_record_the_configured_priority_not_zero() -> None:
    world = World(role="master", following=None, priority=100)
    (first, l1), (second, l2) = fencer_of(world), fencer_of(world)
    await world.poll(first, l1)
    await world.poll(second, l2)  # sees priority 0 and the record: already fenced
    assert world.records == {C: "100"}
    world.online.add(C)  # in sync now
    for fencer, ledger in ((first, l1), (second, l2), (first, l1), (second, l2)):
        await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 100 and world.records == {}


async def test_fence_of_a_crashed_instance_is_lifted_by_a_fresh_one() -> None:
    world = World(priority=0)
    world.records[C] = "70"  # the instance that wrote it is gone
    world.online.add(C)
    fencer, ledger = fencer_of(world)
    assert C in await world.poll(fencer, ledger)  # required before the lift
    assert world.nodes[C].priority == 0
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 70 and world.records == {}
    assert ("CONFIG", "REWRITE") in world.nodes[C].commands


async def test_lift_waits_for_writes_that_read_a_required_set_without_the_node() -> None:
    world = World(priority=0)
    world.records[C] = "100"
    fencer, ledger = fencer_of(world)
    await world.poll(fencer, ledger)  # fenced, syncing: left out
    older = ledger.enter()  # a send that read {A}
    world.online.add(C)
    await world.poll(fencer, ledger)  # required now
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 0  # that send is still in flight
    ledger.leave(older)
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 100


async def test_operators_priority_zero_is_never_changed() -> None:
    world = World(role="master", following=None, priority=0)
    fencer, ledger = fencer_of(world)
    world.online.add(C)
    for _ in range(3):
        await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 0 and world.records == {}


async def test_refused_config_is_logged_once_and_the_node_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World(role="master", following=None, deny_config=True)
    fencer, ledger = fencer_of(world)
    with caplog.at_level(logging.WARNING, logger="server.storage.fencer"):
        for _ in range(3):
            assert await world.poll(fencer, ledger) == {A, C}
    assert sum("refused CONFIG" in r.getMessage() for r in caplog.records) == 1


async def test_lift_racing_another_instances_fence_keeps_that_fence_liftable() -> None:
    world = World(priority=0)
    world.records[C] = "100"
    world.online.add(C)
    fencer, ledger = fencer_of(world)
    await world.poll(fencer, ledger)

    def other_instance_fences_again() -> None:
        # It saw C syncing a moment ago: record (already there), priority 0.
        world.nodes[C].after_set = None
        world.nodes[C].priority = 0

    world.nodes[C].after_set = other_instance_fences_again
    await world.poll(fencer, ledger)  # the lift: restores 100, then C is at 0 again
    assert world.nodes[C].priority == 0
    assert world.records == {C: "100"}  # not an operator's 0: still liftable
    await world.poll(fencer, ledger)
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 100 and world.records == {}


async def test_node_promoted_from_the_primarys_history_is_left_to_sentinel() -> None:
    world = World(role="master", following=None)
    world.nodes[C].replid2 = "p" * 40  # SLAVEOF NO ONE kept the primary's history
    fencer, ledger = fencer_of(world)
    assert await world.poll(fencer, ledger) == {A, C}
    assert world.nodes[C].priority == 100 and world.nodes[C].commands == []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_two_instances_polling_at_once_never_fence_both_replicas() -> None:
    world = World()
    first, second = Fencer(world.client, WaitLedger()), Fencer(world.client, WaitLedger())
    # Each sees the other replica missing from the primary's INFO (a blip
    # that reads differently a few ms apart), long enough to be fenced.
    sees_a, sees_c = dict(world.primary_info()), dict(world.primary_info())
    sees_c["slave0"] = {**sees_a["slave0"], "ip": "10.0.0.3"}
    listed = {A, C}
    for _ in range(2):
        await asyncio.gather(first.required(P, sees_a, listed, listed, set(listed)),
                             second.required(P, sees_c, listed, listed, set(listed)))
    assert len(world.records) == 1
    assert [world.nodes[A].priority, world.nodes[C].priority].count(0) == 1


async def test_readonly_error_during_a_failover_is_retried_at_the_next_poll() -> None:
    world = World(role="master", following=None)
    world.nodes[C].set_error = ReadOnlyError("You can't write against a read only replica.")
    fencer, ledger = fencer_of(world)
    assert await world.poll(fencer, ledger) == {A, C}  # not fenced this time: waited for
    assert await world.poll(fencer, ledger) == {A}
    assert world.nodes[C].priority == 0 and world.records == {C: "100"}


async def test_refused_config_is_tried_again_after_a_while() -> None:
    world = World(role="master", following=None, deny_config=True)
    clock = Clock()
    ledger = WaitLedger()
    fencer = Fencer(world.client, ledger, clock=clock)
    assert await world.poll(fencer, ledger) == {A, C}
    world.nodes[C].deny_config = False  # the operator granted CONFIG
    assert await world.poll(fencer, ledger) == {A, C}
    clock.now += REFUSAL_RETRY_S
    assert await world.poll(fencer, ledger) == {A}
    assert world.nodes[C].priority == 0


async def test_lift_waits_until_other_instances_writes_from_before_have_ended() -> None:
    world = World(priority=0)
    world.records[C] = "100"
    world.online.add(C)
    clock = Clock()
    ledger = WaitLedger()
    fencer = Fencer(world.client, ledger, lift_after_s=8.0, clock=clock)
    assert C in await world.poll(fencer, ledger)  # required at once
    clock.now += 7.0
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 0  # another instance may still run such a write
    clock.now += 1.0
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 100 and world.records == {}


async def test_lift_is_not_delayed_when_no_other_replica_is_promotable() -> None:
    world = World(priority=0)
    world.records[C] = "100"
    world.online = set()
    ledger = WaitLedger()
    fencer = Fencer(world.client, ledger, lift_after_s=8.0, clock=Clock())
    world.nodes[A].priority = 0  # the operator's: A is no anchor
    await world.poll(fencer, ledger)
    await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 100


async def test_node_a_sentinel_majority_does_not_list_is_not_repointed() -> None:
    world = World(role="master", following=None)
    world.records[C] = "100"  # a stale record of a node since removed
    fencer, _ = fencer_of(world)
    required = await fencer.required(P, world.primary_info(), {A}, {A}, {A})
    assert required == {A}
    assert world.nodes[C].commands == [] and world.nodes[C].role == "master"
