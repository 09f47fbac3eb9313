"""The per-node clients survive what Sentinel does to a node it promotes or
repoints: it kills every client connection (CLIENT KILL TYPE normal). Before,
the topology's first poll after a promotion failed on the kept connection and
the failover gap grew by a poll interval (docs/benchmarks.md); the dedupe
layout asked then would have fallen back to generations."""

from __future__ import annotations

import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from server.storage.capabilities import supported_layout
from server.storage.failures import again_if_closed


def node_client(url: str) -> Redis:
    """As the topology's node clients are (server/storage/redis_conn.py): no retries."""
    return Redis.from_url(url, retry=Retry(NoBackoff(), retries=0), retry_on_error=[])


def kill_clients_like_sentinel(url: str) -> None:
    admin = redis.Redis.from_url(url)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()


async def test_the_primarys_info_is_read_on_a_new_connection_after_its_clients_were_killed(
        redis_url: str) -> None:
    client = node_client(redis_url)
    assert (await again_if_closed(lambda: client.info("replication")))["role"] == "master"
    kill_clients_like_sentinel(redis_url)
    assert (await again_if_closed(lambda: client.info("replication")))["role"] == "master"
    await client.aclose()


async def test_a_plain_info_on_the_killed_connection_fails(redis_url: str) -> None:
    # What again_if_closed guards against (if redis-py ever reconnects by
    # itself here, the guard is no longer needed).
    client = node_client(redis_url)
    await client.info("replication")
    kill_clients_like_sentinel(redis_url)
    try:
        await client.info("replication")
    except ConnectionError:
        pass
    else:
        raise AssertionError("INFO on a killed connection succeeded")
    await client.aclose()


async def test_the_dedupe_layout_is_asked_on_a_new_connection_after_the_clients_were_killed(
        redis_url: str) -> None:
    client = node_client(redis_url)
    assert await supported_layout(client) == "hsetex"
    kill_clients_like_sentinel(redis_url)
    assert await supported_layout(client) == "hsetex"  # not the fallback, generations
    await client.aclose()
