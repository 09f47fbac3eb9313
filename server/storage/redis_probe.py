"""Operability questions to Redis: the health write probe, inbox sampling, `check`.

Every command that /healthz, /metrics sampling and `python -m server check`
send is here, next to store.py (the chat's data) and topology.py (what
durable writes wait for), so check.py and health.py hold logic, not Redis
calls. Nothing here writes chat data: the one write is a marker key with a
short TTL that proves the primary accepts writes.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError, ResponseError

from server import keys
from server.settings import Settings
from server.storage.capabilities import supported_layout
from server.storage.cluster_view import tag_for_slot
from server.storage.fencing import is_refusal
from server.storage.redis_conn import Client, RedisHandles, read_password

#: How long a probe marker lives; long enough to see in `redis-cli`, short
#: enough that stopped instances leave nothing behind.
MARKER_TTL_MS = 60_000


def own_slot(cluster_nodes: dict[str, dict[str, Any]]) -> int | None:
    """The first slot the node answering CLUSTER NODES (flag `myself`) holds,
    from redis-py's parse of the reply ("ip:port" -> fields)."""
    for node in cluster_nodes.values():
        if "myself" in str(node.get("flags", "")).split(",") and node.get("slots"):
            return int(node["slots"][0][0])
    return None


class RedisProbe:
    """Read-mostly access to the nodes of the configured Redis set."""

    def __init__(self, settings: Settings, handles: RedisHandles,
                 shard_tags: Callable[[], list[str]] | None = None) -> None:
        """`shard_tags` (a Cluster): a hash tag per shard; the marker is written on each."""
        self._settings = settings
        self.handles = handles
        self._shard_tags = shard_tags
        self._password = read_password(settings.redis_password_file)

    # Used by the running server -------------------------------------------------

    async def write_marker(
        self, instance_id: str, now_ms: int, client: Client | None = None
    ) -> None:
        """One cheap replicated write: raises unless the primary (on a Cluster:
        every shard primary) accepted it."""
        target = self.handles.primary if client is None else client
        if self._shard_tags is None or client is not None:
            await target.set(keys.health_marker(instance_id), now_ms, px=MARKER_TTL_MS)
            return
        tags = self._shard_tags()
        if not tags:
            raise ConnectionError("no Redis Cluster shard known yet")
        pipe = target.pipeline(transaction=False)
        for tag in tags:
            pipe.set(keys.health_marker_in(instance_id, tag), now_ms, px=MARKER_TTL_MS)
        await pipe.execute()

    @staticmethod
    async def write_marker_on_shard(client: Redis, instance_id: str, replicas: int,
                                    timeout_ms: int) -> int:
        """The marker written on `client`, a Cluster shard primary, in a slot it
        holds (not routed by a cluster client, which would prove one shard), then
        WAIT for `replicas`: how many replicas confirmed it."""
        slot = own_slot(await client.execute_command("CLUSTER NODES"))  # type: ignore[no-untyped-call]
        if slot is None:
            raise ResponseError("the node holds no slot")
        await client.set(keys.health_marker_in(instance_id, tag_for_slot(slot)), 0,
                         px=MARKER_TTL_MS)
        return int(await client.wait(replicas, timeout_ms))

    async def inbox_lengths(self, names: Iterable[str]) -> dict[str, int]:
        """XLEN of each user's inbox, in one round trip."""
        names = list(names)
        pipe = self.handles.primary.pipeline(transaction=False)
        for name in names:
            pipe.xlen(keys.inbox(name))
        return dict(zip(names, await pipe.execute(), strict=True))

    # Used by `check` ----------------------------------------------------------

    def node(self, host: str, port: int) -> Redis:
        """A client for one node or Sentinel, with the server's password and TLS."""
        primary = self.handles.primary.get_connection_kwargs()
        kwargs: dict[str, Any] = {
            "host": host, "port": port, "password": self._password or primary.get("password"),
            "username": primary.get("username"),
            "decode_responses": True, "socket_timeout": 2.0, "socket_connect_timeout": 1.0,
            # One try: `check` reports what is down instead of waiting it out.
            "retry": Retry(NoBackoff(), retries=0),
        }
        if self._settings.redis_tls_ca:
            kwargs.update(ssl=True, ssl_ca_certs=self._settings.redis_tls_ca,
                          ssl_cert_reqs=ssl.CERT_REQUIRED)
        return Redis(**kwargs)

    @staticmethod
    async def ping(client: Redis) -> None:
        await client.ping()

    @staticmethod
    async def info(client: Redis, section: str) -> dict[str, Any]:
        info: dict[str, Any] = await client.info(section)
        return info

    @staticmethod
    async def config_get(client: Redis, name: str) -> str | None:
        """A config value, or None when CONFIG is renamed, disabled or not allowed."""
        try:
            values = await client.config_get(name)
        except ResponseError:
            return None
        value = values.get(name)
        return None if value is None else str(value)

    @staticmethod
    async def fence_records(client: Redis) -> dict[str, str]:
        """The fence records on the primary: "ip:port" -> priority to restore."""
        records = await client.hgetall(keys.FENCES)
        return {str(addr): str(priority) for addr, priority in records.items()}

    @staticmethod
    async def may_config_set(client: Redis) -> bool:
        """Whether this user may run CONFIG SET here (what lifting a fence takes):
        replica-priority set to the value it has. False on NOPERM or a renamed
        or disabled CONFIG; other errors raise."""
        try:
            value = (await client.config_get("replica-priority")).get("replica-priority")
            await client.config_set("replica-priority", str(value))
        except ResponseError as exc:
            if is_refusal(exc):
                return False
            raise
        return True

    @staticmethod
    async def master_address(client: Redis, master: str) -> tuple[str, int] | None:
        """What one Sentinel names as the primary (None: it does not monitor `master`)."""
        reply = await _command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)
        if not reply:
            return None
        return str(reply[0]), int(reply[1])

    @staticmethod
    async def ckquorum(client: Redis, master: str) -> tuple[bool, str]:
        """SENTINEL CKQUORUM: can the Sentinels authorize a failover?"""
        try:
            reply = await _command(client, "SENTINEL", "CKQUORUM", master)
        except ResponseError as exc:
            return False, str(exc)
        return True, str(reply)

    @staticmethod
    async def sentinel_replicas(client: Redis, master: str) -> list[dict[str, Any]]:
        replicas: list[dict[str, Any]] = await client.sentinel_slaves(master)
        return replicas

    @staticmethod
    async def dedupe_layout(client: Redis) -> str:
        """The dedupe layout the server would use on this node (data/dedupe.py)."""
        return await supported_layout(client)

    async def close(self, *clients: Redis) -> None:
        for client in clients:
            try:
                await client.aclose()
            except (RedisError, OSError):
                continue


async def _command(client: Redis, *args: str) -> Any:
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]
