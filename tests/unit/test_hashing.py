"""server/conn/hashing.py: password hashing bounded per instance and per address."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.conn.hashing import HashSlots
from server.wire import errors


def test_an_address_holding_its_share_is_rate_limited_while_another_is_not() -> None:
    slots = HashSlots(workers=1, max_queue=10, max_per_address=2)
    with slots.slot("10.0.0.1"), slots.slot("10.0.0.1"):
        with pytest.raises(errors.RateLimited), slots.slot("10.0.0.1"):
            pass
        with slots.slot("10.0.0.2"):
            assert slots.in_flight == 3
    assert slots.in_flight == 0 and not slots.per_address
    slots.close()


def test_beyond_threads_plus_queue_every_address_is_rate_limited() -> None:
    slots = HashSlots(workers=2, max_queue=1, max_per_address=10)
    with slots.slot("a"), slots.slot("b"), slots.slot("c"), \
            pytest.raises(errors.RateLimited), slots.slot("d"):
        pass
    with slots.slot("d"):  # freed again
        pass
    slots.close()


def test_a_failure_inside_the_slot_frees_it() -> None:
    slots = HashSlots(workers=1, max_queue=0, max_per_address=1)
    with pytest.raises(ValueError), slots.slot("a"):
        raise ValueError("boom")
    with slots.slot("a"):
        pass
    slots.close()


async def test_hashes_run_on_the_configured_number_of_own_threads() -> None:
    slots = HashSlots(workers=2, max_queue=8, max_per_address=8)
    names = {await slots.run("a", lambda: threading.current_thread().name) for _ in range(8)}
    assert names and all(name.startswith("argon2") for name in names)
    assert len(names) <= 2
    slots.close()


async def test_waiting_addresses_take_turns_so_one_queue_does_not_delay_others() -> None:
    slots = HashSlots(workers=1, max_queue=10, max_per_address=10)
    order: list[str] = []
    release = threading.Event()

    def job(name: str) -> None:
        release.wait(5)
        order.append(name)

    jobs = [asyncio.create_task(slots.run("flood", job, f"flood{i}")) for i in range(4)]
    await asyncio.sleep(0.05)  # flood0 runs, flood1-3 wait
    jobs.append(asyncio.create_task(slots.run("other", job, "other")))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*jobs)
    assert order[:3] == ["flood0", "flood1", "other"]
    slots.close()


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    slots = HashSlots(workers=1, max_queue=10, max_per_address=10)
    release = threading.Event()
    first = asyncio.create_task(slots.run("a", release.wait, 5))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(slots.run("b", lambda: "b"))
    after = asyncio.create_task(slots.run("c", lambda: "c"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    release.set()
    assert await first and await after == "c"
    assert waiting.cancelled()
    slots.close()
