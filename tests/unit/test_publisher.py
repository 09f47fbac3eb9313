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


class FailingOnceStore:
    """The first publish fails with something no one expected; later ones work."""

    def __init__(self) -> None:
        self.published: list[list[tuple[str, bytes]]] = []
        self.failed = False

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("something redis-py passed on unchanged")
        self.published.append(items)


async def test_the_publisher_keeps_publishing_after_an_unexpected_failure() -> None:
    # A dead publisher task would leave every later message to the sweep.
    store = FailingOnceStore()
    publisher = Publisher(cast(Store, store))
    publisher.start()
    publisher.post("bob", b"lost")
    await asyncio.sleep(0.05)
    publisher.post("bob", b"n1")
    await asyncio.sleep(0.05)
    published = list(store.published)  # before close(), which flushes what is left
    await publisher.close()
    assert store.failed
    assert published == [[("bob", b"n1")]]
