"""server/delivery/publisher.py: batched notifications and a close that always returns."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from server.delivery.publisher import Publisher
from server.store import Store


class SwallowingStore:
    """Publishes like redis-py on Python 3.11 can: a cancel during the write is lost."""

    def __init__(self) -> None:
        self.published: list[list[tuple[str, bytes]]] = []
        self.started = asyncio.Event()

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        self.started.set()
        # Deliberately swallowed: what asyncio.wait_for does when the write
        # finishes just as the cancel lands.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)
        self.published.append(items)


async def test_queued_notifications_go_out_in_one_batch_in_order() -> None:
    store = SwallowingStore()
    publisher = Publisher(cast(Store, store))
    publisher.start()
    for i in range(3):
        publisher.post("bob", f"n{i}".encode())
    await store.started.wait()
    await asyncio.sleep(0.3)
    await publisher.close()
    assert store.published == [[("bob", b"n0"), ("bob", b"n1"), ("bob", b"n2")]]


async def test_close_returns_even_when_the_publish_swallows_the_cancel() -> None:
    store = SwallowingStore()
    publisher = Publisher(cast(Store, store))
    publisher.start()
    publisher.post("bob", b"n0")
    await store.started.wait()
    await asyncio.wait_for(publisher.close(), timeout=2)


async def test_close_is_idempotent() -> None:
    publisher = Publisher(cast(Any, SwallowingStore()))
    publisher.start()
    await publisher.close()
    await publisher.close()
