"""Plain helpers shared by the server/store.py unit tests."""

from __future__ import annotations

import time

from server.data.messages import MAX_STREAM_INT
from server.store import Store

BIG = str(MAX_STREAM_INT)


def now() -> int:
    return int(time.time() * 1000)


async def register(store: Store, *names: str, gen: str = "g1") -> None:
    for name in names:
        assert await store.register(name, f"hash-of-{name}", gen=gen, now_ms=now())


async def send(store: Store, body: str = "hi", *, sender: str = "alice", to: str = "bob",
               msg_id: str = "m1", ts: int = 1000) -> str:
    return (await store.send(sender=sender, to=to, body=body, msg_id=msg_id, now_ms=ts)).seq
