"""Fake Sentinels and nodes for server/storage/topology.Topology's poll tests.

Each client answers by command name (a pipeline queues the answers) and
counts its round trips; `set_world` builds three Sentinels naming P primary
with A and B its replicas, and `topology_of` a Topology over them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.storage.redis_conn import RedisHandles
from server.storage.topology import Topology

P, A, B = ("10.0.0.1", 6379), ("10.0.0.2", 6379), ("10.0.0.3", 6379)


def addr(node: tuple[str, int]) -> str:
    return f"{node[0]}:{node[1]}"


class FakeClient:
    """One node or Sentinel: answers by command name, counts round trips."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.round_trips = 0
        #: Set: every round trip waits for it (a stalled node or event loop).
        self.stalled: asyncio.Event | None = None

    def pipeline(self, transaction: bool = True) -> FakePipe:
        return FakePipe(self)

    async def round_trip(self) -> None:
        self.round_trips += 1
        await asyncio.sleep(0)
        if self.stalled is not None:
            await self.stalled.wait()

    def __getattr__(self, name: str) -> Any:
        async def command(*args: Any, **kwargs: Any) -> Any:
            await self.round_trip()
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return answer
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
        await self.client.round_trip()
        for answer in self.queued:
            if isinstance(answer, Exception) and raise_on_error:
                raise answer
        return self.queued


def sentinel(**b_flags: Any) -> FakeClient:
    """A Sentinel naming P, listing A and B (B with `b_flags`, e.g. is_sdown)."""
    return FakeClient({
        "sentinel_master": {"ip": P[0], "port": P[1], "is_master": True,
                            "down-after-milliseconds": 2000},
        "sentinel_slaves": [{"ip": A[0], "port": A[1]},
                            {"ip": B[0], "port": B[1], **b_flags}],
    })


def nodes(*, online: tuple[tuple[str, int], ...] = (A, B)) -> dict[tuple[str, int], FakeClient]:
    """P primary with `online` in sync; A and B replicas of P (priority 100)."""
    replicas = {f"slave{i}": {"ip": n[0], "port": n[1], "state": "online", "offset": 100,
                              "lag": 0} for i, n in enumerate(online)}
    primary = FakeClient({"info": {"role": "master", "master_repl_offset": 100,
                                   "master_replid": "r" * 40, **replicas},
                          "hgetall": {}, "eval": 1, "execute_command": 2, "hsetnx": 1})
    out = {P: primary}
    for n in (A, B):
        out[n] = FakeClient({
            "info": {"role": "slave", "master_host": P[0], "master_port": P[1],
                     "master_replid2": "0" * 40, "master_sync_in_progress": 0},
            "config_get": {"replica-priority": "100"}, "execute_command": "OK"})
    return out


def topology_of(sentinels: list[FakeClient],
                nodes: dict[tuple[str, int], FakeClient]) -> Topology:
    handles = RedisHandles(primary=FakeClient({}), sentinels=sentinels)  # type: ignore[arg-type]
    handles.node = nodes.__getitem__  # type: ignore[method-assign,assignment]
    return Topology(handles, master_name="chat", interval_ms=500)
