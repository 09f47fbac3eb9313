"""server/hashing.py: password hashing bounded per instance and per address."""

from __future__ import annotations

import threading

import pytest

from server import errors
from server.hashing import HashSlots


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
    names = {await slots.run(lambda: threading.current_thread().name) for _ in range(8)}
    assert names and all(name.startswith("argon2") for name in names)
    assert len(names) <= 2
    slots.close()
