"""Password hashing as a bounded resource: own threads, a bounded queue, a share per address.

argon2 is deliberately slow and memory-hungry (--argon2-memory-kib per
hash in progress), so hashes run on --hash-workers threads of their own,
never on the default executor other work shares. A check takes a slot
before any of its work (Redis reads included); with --max-hash-queue slots
beyond the threads already taken, or --max-hash-per-address held by the
client's address, it is answered `rate_limited` at once, without hashing.
That is a capacity answer, not a lockout: clients retry `rate_limited`
with backoff, so many users behind one NAT all get in, later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server import errors, metrics

T = TypeVar("T")


class HashSlots:
    """The hashing threads and who may wait for them."""

    def __init__(self, *, workers: int, max_queue: int, max_per_address: int) -> None:
        self.workers = workers
        self.capacity = workers + max_queue  # running + waiting
        self.max_per_address = max_per_address
        self.in_flight = 0
        self.per_address: Counter[str] = Counter()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2")

    @contextlib.contextmanager
    def slot(self, address: str) -> Iterator[None]:
        """Hold one hashing slot for `address`, or raise RateLimited at once."""
        if self.per_address[address] >= self.max_per_address:
            metrics.HASH_REJECTED.labels("address").inc()
            raise errors.RateLimited("too many password checks from your address; retry later")
        if self.in_flight >= self.capacity:
            metrics.HASH_REJECTED.labels("instance").inc()
            raise errors.RateLimited("the server is busy checking passwords; retry later")
        self.in_flight += 1
        self.per_address[address] += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on a hashing thread (call inside `slot`)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
