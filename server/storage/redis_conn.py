"""Connections to Redis: one URL, the primary that Sentinel names, or a Cluster.

Both kinds retry connection errors, timeouts and READONLY (a demoted
primary) with a short exponential backoff, then give up so the caller can
answer `unavailable` and the client can retry elsewhere.

The primary is the one a majority of the configured Sentinels names, not the
first Sentinel's answer (redis-py's default): a Sentinel on the minority
side of a partition, or one that has not heard of a failover yet, still
names the old primary, and a write acked there is discarded when that node
rejoins as a replica.

The primary's pool is bounded and blocking (--redis-max-connections): a
burst of requests shares that many connections, each waiting for a free
one. redis-py's default pool opens one per concurrent command instead,
keeps them all (~60 KiB of server memory each) and past its limit (100 in
redis-py 8) fails the command at once ("Too many connections"). A wait
longer than a command may hold a connection means Redis is stuck; it
raises ConnectionError, which callers answer as `unavailable` like any
other Redis failure.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, RedisError, TimeoutError

from server.settings import Settings
from server.storage.cluster_redirects import ask_to_unknown_node
from server.storage.sentinel_majority import majority
from server.wire import errors

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RETRY_ERRORS: list[type[Exception]] = [ConnectionError, TimeoutError, ReadOnlyError]


def read_password(path: str | None) -> str | None:
    """The password in a file (first line); a flag value would show in `ps`."""
    if not path:
        return None
    try:
        return Path(path).read_text().splitlines()[0].strip() or None
    except (OSError, IndexError) as exc:
        raise ValueError(f"cannot read the Redis password from {path}: {exc}") from exc


def unavailable_on_redis_error(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Redis failures (after redis-py's own retries) answer `unavailable`, as does
    redis-py#4015 (an ASK to a node it does not know yet, the command not run:
    storage/cluster_redirects.py)."""

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


Address = tuple[str, int]
#: What chat data is read through: one node's client, or the Cluster's.
Client = Redis | RedisCluster


class MajoritySentinel(Sentinel):
    """A Sentinel manager whose primary is the one a majority names."""

    async def discover_master(self, service_name: str) -> Address:
        answers = await asyncio.gather(
            *(self._named_primary(client, service_name) for client in self.sentinels)
        )
        primary = majority(answers, len(self.sentinels))
        if primary is not None:
            return primary
        raise MasterNotFoundError(
            f"no majority of {len(self.sentinels)} Sentinels names a primary for "
            f"{service_name!r} (answers: {answers})"
        )

    async def _named_primary(self, client: Redis, service_name: str) -> Address | None:
        try:
            state: dict[str, Any] = await client.sentinel_master(service_name)  # type: ignore[assignment]
        except (RedisError, OSError):
            return None
        # Not a primary it believes up (s_down, o_down, failover underway): no vote.
        if not self.check_master_state(state, service_name):
            return None
        return str(state["ip"]), int(state["port"])


class PrimaryPool(SentinelConnectionPool, BlockingConnectionPool):
    """A bounded, blocking Sentinel pool that hands out only connections to
    the current primary.

    Blocking comes from redis-py's BlockingConnectionPool, next in the MRO:
    SentinelConnectionPool overrides neither get_connection nor release,
    so checkout waits on the pool's condition until a connection is free
    (or `timeout` passes) and release wakes one waiter, while connections
    are still made and owned the Sentinel way (unit-tested in
    tests/unit/test_redis_pool.py, in case a redis-py release changes that).

    redis-py resolves the primary when a connection connects and drops idle
    connections when it sees a new address, but a connection that was busy
    at that moment goes back to the pool still connected to the old node.
    If that node is alive (a partition, not a crash) it keeps taking writes
    there: its WAITs fail for ever, or, if the new primary has no replica
    to wait for, acks writes that Sentinel discards when the old node
    rejoins. So every connection is checked against the primary the
    Sentinel majority named last (set by the topology poll) as it leaves
    the pool, and reconnected if it points elsewhere.
    """

    async def get_connection(self, *args: Any, **options: Any) -> AbstractConnection:
        # Passed on as given: redis-py warns (deprecated) about any argument.
        connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
            *args, **options
        )
        expected = self.master_address
        if (
            self.is_master and expected is not None and connection.is_connected
            and (getattr(connection, "host", None), getattr(connection, "port", None))
            != tuple(expected)
        ):
            try:
                await connection.disconnect()
                await connection.connect()  # type: ignore[no-untyped-call]  # asks the Sentinels
            except BaseException:
                await self.release(connection)
                raise
        return connection

    async def primary_moved(self, address: Address) -> None:
        """The topology saw the Sentinel majority name `address`."""
        self.master_address = address
        await self.disconnect(inuse_connections=False)


@dataclass
class RedisHandles:
    """The clients one server instance uses."""

    #: The primary's client; in Cluster mode the cluster client (which routes by key).
    primary: Client
    #: One client per Sentinel, to count which of them answer.
    sentinels: list[Redis] = field(default_factory=list)
    sentinel: Sentinel | None = None
    #: Connection options for a client of one node (topology reads its INFO).
    node_options: dict[str, Any] = field(default_factory=dict)
    #: Options of a node's client for durable writes (Cluster: one per shard primary).
    writer_options: dict[str, Any] = field(default_factory=dict)
    _nodes: dict[Address, Redis] = field(default_factory=dict)
    _writers: dict[Address, Redis] = field(default_factory=dict)

    def node(self, address: Address) -> Redis:
        """A client of the node at `address` (kept for reuse)."""
        client = self._nodes.get(address)
        if client is None:
            client = Redis(host=address[0], port=address[1], **self.node_options)
            self._nodes[address] = client
        return client

    def writer(self, address: Address) -> Redis:
        """A client of the primary at `address` for scripts + WAIT (kept for reuse)."""
        client = self._writers.get(address)
        if client is None:
            pool = BlockingConnectionPool(host=address[0], port=address[1],
                                          **self.writer_options)
            client = self._writers[address] = Redis.from_pool(pool)
        return client

    async def close(self) -> None:
        await self.primary.aclose()
        for client in (*self.sentinels, *self._nodes.values(), *self._writers.values()):
            await client.aclose()


def command_timeout_s(settings: Settings) -> float:
    """Longer than a WAIT, which blocks its connection up to ack_timeout_ms."""
    return settings.ack_timeout_ms / 1000 + 2.0


def pool_options(settings: Settings) -> dict[str, Any]:
    """Bounded, blocking pool of the primary.

    The wait for a free connection is as long as one command may hold one:
    past that, the holders are stuck on a Redis that does not answer, and
    the request answers `unavailable` (ConnectionError "No connection
    available.") instead of queueing for ever.
    """
    return {"max_connections": settings.redis_max_connections,
            "timeout": command_timeout_s(settings)}


def _common(settings: Settings, password: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "decode_responses": True,
        "password": password,
        "socket_timeout": command_timeout_s(settings),
        "socket_connect_timeout": 1.0,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        "retry_on_error": RETRY_ERRORS,
        "health_check_interval": 5,
    }
    if settings.redis_tls_ca:
        kwargs["ssl_ca_certs"] = settings.redis_tls_ca
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return kwargs


def tls_url(url: str, tls: bool) -> str:
    """With --redis-tls-ca a redis:// URL means rediss://: the scheme picks the
    connection class, and a plain connection cannot take the TLS options."""
    if tls and url.startswith("redis://"):
        return "rediss://" + url.removeprefix("redis://")
    return url


def connect(settings: Settings) -> RedisHandles:
    """Build (lazily connecting) clients for the configured Redis."""
    password = read_password(settings.redis_password_file)
    common = _common(settings, password)
    if settings.cluster_nodes:
        return _connect_cluster(settings, common)
    if settings.redis_url:
        url = tls_url(settings.redis_url, bool(settings.redis_tls_ca))
        pool = BlockingConnectionPool.from_url(url, **pool_options(settings), **common)
        return RedisHandles(primary=Redis.from_pool(pool))
    sentinel_kwargs: dict[str, Any] = {
        "password": password,
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
        "decode_responses": True,
        # No retries: redis-py's default (3, backoff up to 10 s) made one
        # unreachable Sentinel stall the topology poll and every primary
        # lookup for seconds; an unanswered Sentinel is simply not counted.
        "retry": Retry(NoBackoff(), retries=0),
        "retry_on_error": [],
    }
    if settings.redis_tls_ca:
        sentinel_kwargs.update(ssl=True, ssl_ca_certs=settings.redis_tls_ca)
        common = {**common, "ssl": True}  # host/port clients choose TLS by this flag
    sentinel = MajoritySentinel(  # type: ignore[no-untyped-call]
        settings.sentinels, sentinel_kwargs=sentinel_kwargs, **common
    )
    primary = sentinel.master_for(
        settings.sentinel_master, connection_pool_class=PrimaryPool,
        **pool_options(settings), **common,
    )
    probes = [Redis(host=host, port=port, **sentinel_kwargs) for host, port in settings.sentinels]
    return RedisHandles(primary=primary, sentinels=probes, sentinel=sentinel,
                        node_options=_node_options(common))


def _node_options(common: dict[str, Any]) -> dict[str, Any]:
    # INFO is quick: no retries, so a dead node costs one poll, not several.
    return {**common, "retry": Retry(NoBackoff(), retries=0), "retry_on_error": [],
            "socket_timeout": 1.0}


def _connect_cluster(settings: Settings, common: dict[str, Any]) -> RedisHandles:
    """The cluster client (reads, routed by key) and options for one node's client:
    durable writes go to each shard primary on a connection of their own
    (data/cluster_commit.py), as does sharded pub/sub."""
    if settings.redis_tls_ca:
        common = {**common, "ssl": True}
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in settings.cluster_seeds],
        max_connections=settings.redis_max_connections, **common)
    writer = {**common, **pool_options(settings)}
    if settings.redis_tls_ca:  # a pool's connection class is chosen by hand
        writer.pop("ssl")
        writer["connection_class"] = SSLConnection
    return RedisHandles(primary=cluster, node_options=_node_options(common),
                        writer_options=writer)
