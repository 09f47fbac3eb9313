"""server/storage/fencer.Fencer when a node refuses: a refused CONFIG is logged once,
the node waited for and tried again after a while; a READONLY error during a
failover is retried at the next poll.
"""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ReadOnlyError

from server.storage.fencer import REFUSAL_RETRY_S, Fencer
from server.storage.ledger import WaitLedger
from tests.unit.fencer_fakes import A, C, Clock, World, fencer_of


async def test_refused_config_is_logged_once_and_the_node_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World(role="master", following=None, deny_config=True)
    fencer, ledger = fencer_of(world)
    with caplog.at_level(logging.WARNING, logger="server.storage.fencer"):
        for _ in range(3):
            assert await world.poll(fencer, ledger) == {A, C}
    assert sum("refused CONFIG" in r.getMessage() for r in caplog.records) == 1


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


async def test_readonly_error_during_a_failover_is_retried_at_the_next_poll() -> None:
    world = World(role="master", following=None)
    world.nodes[C].set_error = ReadOnlyError("You can't write against a read only replica.")
    fencer, ledger = fencer_of(world)
    assert await world.poll(fencer, ledger) == {A, C}  # not fenced this time: waited for
    assert await world.poll(fencer, ledger) == {A}
    assert world.nodes[C].priority == 0 and world.records == {C: "100"}
