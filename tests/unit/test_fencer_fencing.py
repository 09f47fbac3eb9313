"""server/storage/fencer.Fencer: which node is fenced and repointed, also when two
instances race, and which it leaves alone (an operator's priority 0, a node
Sentinel promoted or a majority does not list).
"""

from __future__ import annotations

import asyncio

from server.storage.fencer import Fencer
from server.storage.ledger import WaitLedger
from tests.unit.fencer_fakes import A, C, P, World, fencer_of


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


async def test_operators_priority_zero_is_never_changed() -> None:
    world = World(role="master", following=None, priority=0)
    fencer, ledger = fencer_of(world)
    world.online.add(C)
    for _ in range(3):
        await world.poll(fencer, ledger)
    assert world.nodes[C].priority == 0 and world.records == {}


async def test_node_promoted_from_the_primarys_history_is_left_to_sentinel() -> None:
    world = World(role="master", following=None)
    world.nodes[C].replid2 = "p" * 40  # SLAVEOF NO ONE kept the primary's history
    fencer, ledger = fencer_of(world)
    assert await world.poll(fencer, ledger) == {A, C}
    assert world.nodes[C].priority == 100 and world.nodes[C].commands == []


async def test_node_a_sentinel_majority_does_not_list_is_not_repointed() -> None:
    world = World(role="master", following=None)
    world.records[C] = "100"  # a stale record of a node since removed
    fencer, _ = fencer_of(world)
    required = await fencer.required(P, world.primary_info(), {A}, {A}, {A})
    assert required == {A}
    assert world.nodes[C].commands == [] and world.nodes[C].role == "master"
