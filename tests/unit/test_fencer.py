"""server/fencer.Fencer against hand-made fake nodes: races, a crashed
instance's fence, the lift ordered after older waits, a refused CONFIG.

fakeredis has no INFO replication, CONFIG SET replica-priority or REPLICAOF,
so each node here is a few fields and the commands the fencer sends.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.exceptions import ResponseError

from server import keys
from server.storage.fencer import Fencer
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

    # The primary's data (only the fence records live here).
    async def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.hashes.get(key, {}))

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
        out: dict[str, Any] = {"role": self.role, "master_replid2": self.replid2}
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
