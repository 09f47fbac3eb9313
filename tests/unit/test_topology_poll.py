"""server/storage/topology.Topology's poll against fake Sentinels and nodes:
how many round trips one poll makes.

During an outage the instance's event loop is busy answering the clients'
retries, and each await of the poll waits for a turn of it: a poll of many
sequential round trips saw the new primary seconds late (or ran past its
timeout and was thrown away). So a poll asks each Sentinel once, the
primary once (INFO and the fence records together) and each replica once.
"""

from __future__ import annotations

from tests.unit.topology_fakes import A, B, P, addr, nodes, sentinel, topology_of


async def test_a_poll_asks_each_sentinel_and_each_node_once() -> None:
    sentinels, clients = [sentinel() for _ in range(3)], nodes()
    topology = topology_of(sentinels, clients)

    await topology.refresh()

    assert topology.now.primary == addr(P)
    assert topology.required_replicas() == 2
    assert [s.round_trips for s in sentinels] == [1, 1, 1]
    assert {addr(n): c.round_trips for n, c in clients.items()} == {
        addr(P): 1, addr(A): 1, addr(B): 1}

