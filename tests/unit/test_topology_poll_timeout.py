"""server/storage/topology.Topology when a poll gets no answer in time, and
when it gets a real one: no answer keeps the last good view until its age
passes max_age_s (when writes refuse it anyway); an answer (no Sentinel
majority, the node is a replica) is published at once.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from server.storage import topology as topology_module
from server.storage.topology import Topology
from server.wire import errors
from tests.unit.topology_fakes import FakeClient, P, nodes, sentinel, topology_of


@pytest.fixture
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology_module, "POLL_TIMEOUT_S", 0.05)


async def _good() -> tuple[Topology, list[FakeClient], dict[tuple[str, int], FakeClient]]:
    sentinels, clients = [sentinel() for _ in range(3)], nodes()
    topology = topology_of(sentinels, clients)
    await topology.refresh()
    assert topology.required_replicas() == 2
    return topology, sentinels, clients


def _stall(clients: list[FakeClient]) -> None:
    for client in clients:
        client.stalled = asyncio.Event()  # never set: the poll runs past its timeout


async def test_a_poll_that_times_out_keeps_the_last_good_view(short_polls: None) -> None:
    topology, sentinels, _ = await _good()
    good = topology.now
    _stall(sentinels)
    await topology.refresh()
    assert topology.now is good
    assert topology.required_replicas() == 2


async def test_a_poll_that_times_out_once_the_view_is_too_old_publishes_no_primary(
    short_polls: None,
) -> None:
    topology, sentinels, _ = await _good()
    _stall(sentinels)
    topology.now.taken -= topology.max_age_s + 0.1
    await topology.refresh()
    assert not topology.now.primary_ok
    assert "took over" in topology.now.reason
    with pytest.raises(errors.Unavailable):
        topology.required_replicas()


async def test_a_poll_without_a_sentinel_majority_publishes_it_at_once() -> None:
    topology, sentinels, _ = await _good()
    for client in sentinels[:2]:
        client.answers["sentinel_master"] = RedisConnectionError("cut off")
    await topology.refresh()
    assert not topology.now.primary_ok
    with pytest.raises(errors.Unavailable):
        topology.required_replicas()


async def test_a_poll_finding_the_primary_a_replica_publishes_it_at_once() -> None:
    topology, _, clients = await _good()
    clients[P].answers["info"] = {"role": "slave", "master_host": "10.0.0.2",
                                  "master_port": 6379}
    await topology.refresh()
    assert not topology.now.primary_ok
    assert "replica" in topology.now.reason
    with pytest.raises(errors.Unavailable):
        topology.required_replicas()
