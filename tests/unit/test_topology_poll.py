"""server/storage/topology.Topology's poll against fake Sentinels and nodes:
how many round trips one poll makes.

During an outage the instance's event loop is busy answering the clients'
retries, and each await of the poll waits for a turn of it: a poll of many
sequential round trips saw the new primary seconds late (or ran past its
timeout and was thrown away). So a poll asks each Sentinel once, the
primary once (INFO and the fence records together) and each replica once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.storage.redis_conn import RedisHandles
from server.storage.topology import Topology

P, A, B = ("10.0.0.1", 6379), ("10.0.0.2", 6379), ("10.0.0.3", 6379)


def _addr(node: tuple[str, int]) -> str:
    return f"{node[0]}:{node[1]}"


class FakeClient:
    """One node or Sentinel: answers by command name, counts round trips."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.round_trips = 0

    def pipeline(self, transaction: bool = True) -> FakePipe:
        return FakePipe(self)

    def __getattr__(self, name: str) -> Any:
        async def command(*args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            await asyncio.sleep(0)
            return self.answers[name]
        return command


class FakePipe:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.queued: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> FakePipe:
            self.queued.append(self.client.answers[name])
            return self
        return queue

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.client.round_trips += 1
        await asyncio.sleep(0)
        return self.queued


def _sentinel() -> FakeClient:
    return FakeClient({
        "sentinel_master": {"ip": P[0], "port": P[1], "is_master": True,
                            "down-after-milliseconds": 2000},
        "sentinel_slaves": [{"ip": n[0], "port": n[1]} for n in (A, B)],
    })


def _nodes() -> dict[tuple[str, int], FakeClient]:
    replicas = {f"slave{i}": {"ip": n[0], "port": n[1], "state": "online", "offset": 100,
                              "lag": 0} for i, n in enumerate((A, B))}
    primary = FakeClient({"info": {"role": "master", "master_repl_offset": 100,
                                   "master_replid": "r" * 40, **replicas},
                          "hgetall": {}})
    nodes = {P: primary}
    for n in (A, B):
        nodes[n] = FakeClient({
            "info": {"role": "slave", "master_host": P[0], "master_port": P[1],
                     "master_replid2": "0" * 40, "master_sync_in_progress": 0},
            "config_get": {"replica-priority": "100"}})
    return nodes


async def test_a_poll_asks_each_sentinel_and_each_node_once() -> None:
    sentinels, nodes = [_sentinel() for _ in range(3)], _nodes()
    handles = RedisHandles(primary=FakeClient({}), sentinels=sentinels)  # type: ignore[arg-type]
    handles.node = nodes.__getitem__  # type: ignore[method-assign,assignment]
    topology = Topology(handles, master_name="chat", interval_ms=500)

    await topology.refresh()

    assert topology.now.primary == _addr(P)
    assert topology.required_replicas() == 2
    assert [s.round_trips for s in sentinels] == [1, 1, 1]
    assert {_addr(n): c.round_trips for n, c in nodes.items()} == {
        _addr(P): 1, _addr(A): 1, _addr(B): 1}

