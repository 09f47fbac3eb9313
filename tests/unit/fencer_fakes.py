"""Hand-made fake nodes for server/storage/fencer.Fencer's tests.

fakeredis has no INFO replication, CONFIG SET replica-priority or REPLICAOF,
so each node here is a few fields and the commands the fencer sends; a
`World` is three of them (P the primary, A and C replicas) and a `Clock`
the fencer's time.
"""

from __future__ import annotations

import asyncio
from typing import Any

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
        await fencer.settled()  # the plan's actions run in their own task
        return required

    @property
    def records(self) -> dict[str, str]:
        return self.nodes[P].hashes.setdefault(keys.FENCES, {})


def fencer_of(world: World) -> tuple[Fencer, WaitLedger]:
    ledger = WaitLedger()
    return Fencer(world.client, ledger), ledger


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
