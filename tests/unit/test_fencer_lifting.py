"""server/storage/fencer.Fencer lifting a fence: after the writes that read a set
without the node (its own and other instances'), not later than it must, and a
crashed instance's fence by a fresh one.
"""

from __future__ import annotations

from server.storage.fencer import Fencer
from server.storage.ledger import WaitLedger
from tests.unit.fencer_fakes import A, C, Clock, World, fencer_of


async def test_fence_of_a_crashed_instance_is_lifted_by_a_fresh_one() -> None:
    world = World(priority=0)
    world.records[C] = "70"  # the instance that wrote it is gone
    world.online.add(C)
    fencer, ledger = fencer_of(world)
    # Required in the published set, then lifted (its actions run after the publish).
    assert C in await world.poll(fencer, ledger)
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


async def test_lift_racing_another_instances_fence_keeps_that_fence_liftable() -> None:
    world = World(priority=0)
    world.records[C] = "100"
    world.online.add(C)
    fencer, ledger = fencer_of(world)

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
