"""server/storage/topology.Topology while the fencer acts: its actions (the
fence record's WAIT, CONFIG SET on a node that may be slow or stalled) run
in their own task, so the poll publishes within FENCE_GRACE_S; a returning node
not fenced by then is waited for exactly as without fencing.

A poll that waited for them ran past its 3 s timeout under load and was
replaced by a view without a primary: every send answered `unavailable`
(docs/benchmarks.md, "Fencing outside the poll").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.storage.fencer import FENCE_GRACE_S
from server.storage.topology import Topology
from tests.unit.topology_fakes import A, B, FakeClient, P, addr, nodes, sentinel, topology_of

#: How long the returning node's CONFIG SET blocks.
FENCE_S = 5.0


class SlowToFence(FakeClient):
    """An old primary come back: answers INFO at once, CONFIG SET only after FENCE_S."""

    def __init__(self, primary: FakeClient, delay_s: float) -> None:
        super().__init__({
            "info": {"role": "master", "master_replid": "o" * 40,
                     "master_replid2": "0" * 40, "master_sync_in_progress": 0},
            "config_get": {"replica-priority": "100"}, "execute_command": "OK"})
        self.primary = primary
        self.delay_s = delay_s
        self.fenced_at: float | None = None
        self.fenced = asyncio.Event()

    async def config_set(self, name: str, value: Any) -> bool:
        await asyncio.sleep(self.delay_s)
        self.answers["config_get"] = {"replica-priority": str(value)}
        self.primary.answers["hgetall"] = {addr(B): "100"}  # what the record script wrote
        self.fenced_at = time.monotonic()
        self.fenced.set()
        return True


def _returning_b(delay_s: float, **b_flags: Any) -> tuple[Topology, SlowToFence]:
    clients = nodes(online=(A,))
    clients[B] = slow = SlowToFence(clients[P], delay_s)
    return topology_of([sentinel(**b_flags) for _ in range(3)], clients), slow


@pytest.mark.slow
async def test_a_fence_taking_5_s_does_not_stop_writes_the_rules_allow() -> None:
    # Every Sentinel still reports B down: it cannot be promoted, so the
    # rules let writes wait for A alone while B is fenced.
    topology, slow = _returning_b(FENCE_S, is_sdown=True)
    start = time.monotonic()
    while slow.fenced_at is None:
        began = time.monotonic()
        await topology.refresh()
        assert time.monotonic() - began < 1.0  # the poll does not wait for the fence
        assert topology.required_replicas() == 1  # so writes go on
        await asyncio.sleep(0.25)
    assert slow.fenced_at - start >= FENCE_S
    await topology.close()


async def test_a_returning_node_is_waited_for_until_its_fence_takes() -> None:
    # Sentinels could promote B: until it is fenced a write waits for it.
    topology, slow = _returning_b(2 * FENCE_GRACE_S)
    await topology.refresh()
    assert topology.now.required == {addr(A), addr(B)}
    assert topology.required_replicas() == 2  # B is not online: the WAIT refuses the write
    await asyncio.wait_for(slow.fenced.wait(), 5)
    await topology.refresh()
    assert topology.now.required == {addr(A)}
    assert slow.answers["config_get"] == {"replica-priority": "0"}
    await topology.close()
