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
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server import metrics
from server.wire import errors

T = TypeVar("T")


class HashSlots:
    """The hashing threads and who may wait for them."""

    def __init__(self, *, workers: int, max_queue: int, max_per_address: int) -> None:
        self.workers = workers
        self.capacity = workers + max_queue  # running + waiting
        self.max_per_address = max_per_address
        self.in_flight = 0
        self.per_address: Counter[str] = Counter()
        # An address runs at most half the threads at once: others find one free.
        self.share = max(1, workers // 2)
        self._running = 0  # hashes handed to a thread
        self._running_by: Counter[str] = Counter()
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # in turn order
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

    async def run(self, address: str, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on a hashing thread, in `address`'s turn (call inside `slot`)."""
        await self._turn(address)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._release(address)

    def _may_start(self, address: str) -> bool:
        return self._running < self.workers and self._running_by[address] < self.share

    def _start(self, address: str) -> None:
        self._running += 1
        self._running_by[address] += 1

    async def _turn(self, address: str) -> None:
        """Wait for a thread; waiting addresses take turns (round robin).

        Fair rather than first come, and one address runs at most `share`
        hashes at once (one argon2 hash already keeps several cores busy
        with its lanes): another address's login waits for no queue.
        """
        if not self._waiting and self._may_start(address):
            self._start(address)
            return
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(address, deque()).append(gate)
        try:
            await gate  # _wake counted us as running when it opened the gate
        except asyncio.CancelledError:
            if gate.done() and not gate.cancelled():
                self._release(address)  # handed a turn we will not use: pass it on
            else:
                gates = self._waiting.get(address)
                if gates is not None and gate in gates:
                    gates.remove(gate)
                    if not gates:
                        del self._waiting[address]
            raise

    def _release(self, address: str) -> None:
        self._running -= 1
        self._running_by[address] -= 1
        if self._running_by[address] <= 0:
            del self._running_by[address]
        self._wake()

    def _wake(self) -> None:
        """Start waiting hashes, address after address, while threads are free."""
        for address in list(self._waiting):
            if self._running >= self.workers:
                return
            gates = self._waiting[address]
            if not self._may_start(address):
                continue
            gate = gates.popleft()
            del self._waiting[address]
            if gates:
                self._waiting[address] = gates  # to the back: the next address goes first
            if not gate.cancelled():
                self._start(address)
                gate.set_result(None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
