"""How a Redis failure is told apart and answered.

- Every Redis failure a store call meets answers `unavailable` (retryable),
  never `internal`: RedisError and OSError, and a write on a connection the
  node closed as uvloop reports it. redis-py answers a dead connection with
  ConnectionError when asyncio's own transport reports it, but uvloop's
  transport raises RuntimeError ("unable to perform operation on
  <TCPTransport closed=True ...>; the handler is closed") and redis-py
  passes it on unchanged. It happens on every node restart (a whole Cluster
  or Sentinel set restarting, a failover). tests/unit/test_storage_failures.py
  fails loudly if uvloop changes how it says this.
- redis-py#4015 (an ASK to a node redis-py does not know yet, the command
  not run: storage/cluster_redirects.py) answers `unavailable` too.
- A command that failed at once on a closed connection is made once more.
- A cancel redis-py swallowed is raised again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import ConnectionError, RedisError

from server.storage.cluster_redirects import ask_to_unknown_node
from server.wire import errors

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: uvloop's words for a write on a closed transport (uvloop/handles/handle.pyx).
_CLOSED = "the handler is closed"


def closed_transport(exc: BaseException) -> bool:
    """Whether `exc` is uvloop's RuntimeError for a write on a closed connection."""
    return type(exc) is RuntimeError and _CLOSED in str(exc)


def unavailable_on_redis_error(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Redis failures (after redis-py's own retries) answer `unavailable`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise errors.Unavailable(f"storage unreachable ({type(exc).__name__}); retry") from exc
        except AttributeError as exc:
            if not ask_to_unknown_node(exc):
                raise
            log.debug("a slot is moving to a node redis-py does not know yet "
                      "(redis/redis-py#4015), answering unavailable: %s", exc)
            raise errors.Unavailable("storage slot moving; retry") from exc
        except RuntimeError as exc:
            if not closed_transport(exc):
                raise
            raise errors.Unavailable("storage connection closed; retry") from exc

    return wrapper


#: A command that fails faster than this failed on a connection the node
#: closed (or refused), not on a node that does not answer.
QUICK_FAILURE_S = 0.1


async def again_if_closed(call: Callable[[], Awaitable[T]]) -> T:
    """`call`, made once more at once if it failed fast on a closed connection.

    Sentinel kills every client connection of a node it promotes or repoints
    (CLIENT KILL TYPE normal). The per-node clients (topology, fencer) keep
    their connection between polls and do not retry (a dead node costs one
    poll, not several), so their next command fails although the node is
    up: for the topology that cost a poll interval of every failover. A
    slower failure is a node that does not answer: not retried, so a cut-off
    node still costs one timeout.
    """
    started = time.monotonic()
    try:
        return await call()
    except ConnectionError:
        if time.monotonic() - started > QUICK_FAILURE_S:
            raise
        return await call()  # on a new connection


def raise_if_cancelled() -> None:
    """Raise the cancellation of this task if a callee swallowed it.

    redis-py writes through asyncio.wait_for, which on Python 3.11 returns
    the result and drops a cancel that arrives as the write completes: the
    task would go on and close() would wait for it for ever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
