"""Group commit: durable writes batched behind one WAIT.

A write that must survive failover (a send, a registration, a deletion) is
queued here. A batch goes to the primary as ONE pipeline on one connection:
the batch's scripts, an INCR of our own, then WAIT (or WAITAOF). WAIT counts
the replication offset of its own connection's last write; the INCR makes
that offset cover every script of the batch, including retries that only
read a dedupe record. A failover between write and wait cannot fool us,
because both travel on the same connection or fail together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError, ResponseError

from server import metrics
from server.data.script_calls import load_script, script_batch
from server.storage.ledger import WaitLedger
from server.storage.redis_conn import Client
from server.wire import errors

log = logging.getLogger(__name__)

MAX_BATCH = 256

class OrderedGroup:
    """The writes of one connection's pipelined sends (conn/requests.py).

    Batches fly concurrently and Redis may run a later one first, so the
    writes of one group are never split across batches: they commit in the
    order they were queued. Callers pass the group along explicitly.
    """

    __slots__ = ()


class ShardedWrites(Protocol):
    """Commits a batch shard by shard (a Cluster: data/cluster_commit.py)."""

    async def commit(self, batch: list[Write]) -> None: ...


class Write:
    """One queued script call and the future its caller awaits."""

    __slots__ = ("args", "future", "group", "keys", "merge", "script")

    def __init__(self, script: AsyncScript, keys: list[str], args: list[Any], merge: bool,
                 future: asyncio.Future[Any], group: OrderedGroup | None) -> None:
        self.script, self.keys, self.args, self.merge = script, keys, args, merge
        self.future = future
        self.group = group


class GroupCommitter:
    """Runs scripts in batches and resolves each after the batch is durable."""

    def __init__(
        self,
        redis: Client,
        *,
        required_replicas: Callable[[], int],
        ack_timeout_ms: int,
        fsync: bool = False,
        max_in_flight: int = 4,
        count_batches: bool = True,
        ledger: WaitLedger | None = None,
        shards: ShardedWrites | None = None,
    ) -> None:
        """`shards`: commit each batch shard by shard instead of on `redis`."""
        self._redis = redis
        self._required = required_replicas
        self._timeout_ms = ack_timeout_ms
        self._fsync = fsync
        self._count_batches = count_batches  # into chat_commit_batch_size
        self._ledger = ledger
        self._shards = shards
        self._queue: list[Write] = []
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="group-commit")

    async def close(self) -> None:
        """Stop after finishing the batches in flight; idempotent."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(errors.Unavailable("server is shutting down"))
        self._queue.clear()

    async def run(
        self, script: AsyncScript, keys: list[str], args: list[Any], *, merge: bool = False,
        group: OrderedGroup | None = None,
    ) -> Any:
        """Run `script` durably; its result, or Unavailable if not confirmed.

        `merge`: the script takes several calls at once (see
        data/script_calls.script_batch); neighbouring calls of it in a batch are merged.
        `group`: the calls of one group stay together in one batch, in order.
        """
        if self._task is None:
            raise errors.Unavailable("server is not running")
        item = Write(script, keys, args, merge, asyncio.get_running_loop().create_future(),
                     group)
        self._queue.append(item)
        self._wakeup.set()
        return await item.future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await self._slots.acquire()
            queue = self._queue
            cut = MAX_BATCH
            while cut < len(queue) and queue[cut].group is not None \
                    and queue[cut].group is queue[cut - 1].group:
                cut += 1  # an ordered group stays in one batch
            batch, self._queue = queue[:cut], queue[cut:]
            if not self._queue:
                self._wakeup.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._commit(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _commit(self, batch: list[Write]) -> None:
        try:
            if self._shards is not None:
                await self._shards.commit(batch)
            else:
                await self._commit_here(batch)
        except (RedisError, OSError) as exc:
            log.warning("durable write failed: %s: %s", type(exc).__name__, exc)
            for item in batch:
                resolve(item.future, errors.Unavailable("storage unreachable; retry"))
        except Exception:
            # Never leave a send waiting forever, whatever the client library
            # raised; the write was not confirmed, so the client retries.
            log.exception("durable write failed unexpectedly")
            for item in batch:
                resolve(item.future, errors.Unavailable("storage error; retry"))
        finally:
            self._slots.release()

    async def _commit_here(self, batch: list[Write]) -> None:
        """The batch on the one primary, behind one WAIT."""
        try:
            required = self._required()
        except errors.ChatError as exc:
            for item in batch:
                resolve(item.future, exc)
            return
        ticket = self._ledger.enter() if self._ledger is not None else None
        try:
            started = time.perf_counter()
            if self._count_batches:
                metrics.COMMIT_BATCH.observe(len(batch))
            results, acked = await self._execute(batch, required)
            if acked is not None:
                metrics.WAIT_SECONDS.observe(time.perf_counter() - started)
                failure = unconfirmed(acked, required)
                if failure is not None:
                    for item in batch:
                        resolve(item.future, failure)
                    return
            for item, result in zip(batch, results, strict=False):
                resolve_result(item, result)
        finally:
            if ticket is not None and self._ledger is not None:
                self._ledger.leave(ticket)

    async def _execute(self, batch: list[Write], required: int) -> tuple[list[Any], Any]:
        """The scripts' results and the WAIT answer (None when nothing waits)."""
        results, acked = await self._pipeline(batch, required)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            # A node that restarted or was promoted may lack our scripts. Only
            # the scripts that did not run are run again (a register must not
            # run twice), and both WAITs must have reached the replicas.
            for script in {id(batch[i].script): batch[i].script for i in missing}.values():
                await load_script(self._redis, script)
            retried, acked_again = await self._pipeline([batch[i] for i in missing], required)
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
            acked = _weakest(acked, acked_again)
        return results, acked

    async def _pipeline(self, batch: list[Write], required: int) -> tuple[list[Any], Any]:
        wait = wait_command(self._fsync, required, self._timeout_ms)
        calls = [(item.script, item.keys, item.args, item.merge) for item in batch]
        return await script_batch(self._redis, calls, wait=wait)


def unconfirmed(acked: Any, required: int) -> errors.Unavailable | None:
    """The failure to answer when a WAIT (int) or WAITAOF ([local, replicas])
    answer falls short of `required` replicas, else None."""
    replicas = acked[1] if isinstance(acked, list) else acked
    local_ok = acked[0] >= 1 if isinstance(acked, list) else True
    if replicas >= required and local_ok:
        return None
    metrics.WAIT_TIMEOUTS.inc()
    return errors.Unavailable(f"write reached {replicas} of {required} replicas in time; retry")


def wait_command(fsync: bool, required: int, timeout_ms: int) -> tuple[Any, ...] | None:
    """WAIT (or WAITAOF) for `required` replicas; None when nothing waits."""
    if fsync:
        return ("WAITAOF", 1, required, timeout_ms)
    return ("WAIT", required, timeout_ms) if required else None


def resolve_result(item: Write, result: Any) -> None:
    """A script's reply (or its error) to the caller of a confirmed batch."""
    if isinstance(result, ReadOnlyError):  # demoted under us: a failover
        resolve(item.future, errors.Unavailable("the Redis primary changed; retry"))
    elif isinstance(result, ResponseError):
        log.error("script failed: %s", result)
        resolve(item.future, errors.Internal("storage script failed"))
    else:
        resolve(item.future, result)


def _weakest(first: Any, second: Any) -> Any:
    """The smaller of two WAIT (int) or WAITAOF ([local, replicas]) answers."""
    if first is None or second is None:
        return None
    if isinstance(first, list) and isinstance(second, list):
        return [min(first[0], second[0]), min(first[1], second[1])]
    return min(first, second)


def resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
