"""Group commit on a Redis Cluster: each batch split by shard, each part behind its own WAIT.

The group committer (data/commit.py) queues and batches as in Sentinel mode
and hands each batch here. Its writes are split by the shard primary that
holds their slot (server/storage/cluster_topology.py); each part goes to
that primary as ONE pipeline on one connection of our own (redis-py's
cluster client would send a bare WAIT to an arbitrary node): its script
calls, merged only within one slot, an INCR of a counter in one of its
slots, and WAIT for every replica of that shard the cluster could promote.

A call the node refused without running it (MOVED or ASK during a slot
move or a failover, TRYAGAIN while a move splits a user's keys, CLUSTERDOWN,
NOSCRIPT on a promoted replica, a connection that failed) is tried again,
with the topology re-read and a growing pause, until the ack timeout has
passed; a call that ran is answered `ok` only when the WAIT on the node
that ran it confirmed it, and `unavailable` otherwise, never retried (the
client retries with the same msg_id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeout

from server import keys, metrics
from server.data.commit import Write, resolve, resolve_result, unconfirmed, wait_command
from server.data.script_calls import script_batch
from server.storage.cluster_topology import ClusterTopology, Shard
from server.storage.cluster_view import tag_for_slot
from server.storage.redis_conn import RedisHandles
from server.wire import errors

log = logging.getLogger(__name__)

#: Replies that say the node did not run the call: it may run elsewhere or later
#: (redis-py parses MOVED as MovedError, a kind of AskError; LOADING as BusyLoadingError).
NOT_RUN = (AskError, TryAgainError, ClusterDownError, BusyLoadingError, ReadOnlyError,
           NoScriptError)
FIRST_PAUSE_S = 0.02


def slot_of(key: str) -> int:
    return key_slot(key.encode())


def not_run(result: Any) -> bool:
    """A reply by which the node refused a call without running it."""
    return isinstance(result, NOT_RUN)


class ClusterWrites:
    """Commits batches shard by shard (data/commit.ShardedWrites)."""

    def __init__(self, handles: RedisHandles, topology: ClusterTopology, *,
                 ack_timeout_ms: int, fsync: bool = False, waits: bool = True) -> None:
        """`waits` False: no WAIT (the ack batcher: a lost ack is only a redelivery)."""
        self._handles = handles
        self._topology = topology
        self._timeout_ms = ack_timeout_ms
        self._fsync = fsync
        self._waits = waits

    async def commit(self, batch: list[Write]) -> None:
        if self._waits:  # the ack batcher's batches are not counted (as with one primary)
            metrics.COMMIT_BATCH.observe(len(batch))
        deadline = time.monotonic() + self._timeout_ms / 1000
        pause = FIRST_PAUSE_S
        pending = batch
        while True:
            failure: errors.Unavailable | None = None
            parts: dict[Shard, list[Write]] = {}
            retry: list[Write] = []
            for item in pending:
                try:
                    shard = self._topology.shard_of(slot_of(item.keys[0]))
                except errors.Unavailable as exc:
                    failure = exc
                    retry.append(item)
                    continue
                parts.setdefault(shard, []).append(item)
            for again in await asyncio.gather(
                    *(self._commit_on(shard, part) for shard, part in parts.items())):
                retry += again
            if not retry:
                return
            if time.monotonic() + pause > deadline:
                failure = failure or errors.Unavailable(
                    "the cluster did not take the write in time (slot moving or failover); retry")
                for item in retry:
                    resolve(item.future, failure)
                return
            self._topology.request_refresh()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
            pending = [item for item in retry if not item.future.done()]
            if not pending:
                return

    async def _commit_on(self, shard: Shard, part: list[Write]) -> list[Write]:
        """Run `part` on the shard primary; the writes to try again."""
        writer = self._handles.writer(shard.primary)
        required = shard.acks if self._waits else 0
        wait = wait_command(self._fsync, required, self._timeout_ms) if self._waits else None
        calls = [(item.script, item.keys, item.args, item.merge) for item in part]
        commit_key = keys.commit_in(tag_for_slot(slot_of(part[0].keys[0])))
        ticket = self._topology.ledger.enter()
        started = time.perf_counter()
        try:
            results, acked = await script_batch(writer, calls, wait=wait,
                                                commit_key=commit_key, slot_of=slot_of)
            if acked is not None:
                metrics.WAIT_SECONDS.observe(time.perf_counter() - started)
        except (ConnectionError, RedisTimeout, OSError) as exc:
            log.warning("shard primary %s:%s unreachable: %s", *shard.primary, exc)
            return part
        except ResponseError as exc:  # the INCR or WAIT refused: a moved slot, a demoted node
            log.info("shard primary %s:%s refused the commit: %s", *shard.primary, exc)
            return part
        except RedisError as exc:
            log.warning("durable write on %s:%s failed: %s", *shard.primary, exc)
            for item in part:
                resolve(item.future, errors.Unavailable("storage unreachable; retry"))
            return []
        finally:
            self._topology.ledger.leave(ticket)
        failure = unconfirmed(acked, required) if acked is not None else None
        retry: list[Write] = []
        for item, result in zip(part, results, strict=True):
            if not_run(result):
                if isinstance(result, NoScriptError):
                    await writer.script_load(item.script.script)
                retry.append(item)
            elif failure is not None:
                resolve(item.future, failure)
            else:
                resolve_result(item, result)
        return retry
