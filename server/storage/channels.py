"""Where pub/sub channels live: one connection to the primary, or one per Cluster shard.

The delivery listener (server/delivery/fanout.py) reads a list of feeds,
each one pub/sub connection with the channels it carries and a ping
channel of its own, so /healthz proves every connection hears. It builds
them anew after any failover or slot move, and re-reads the inboxes of its
users after that (the stream is the truth, pub/sub only a hint).

- One primary (Sentinel or a URL): one feed, SUBSCRIBE/PUBLISH.
- A Redis Cluster: one feed per shard primary (as the topology names them),
  SSUBSCRIBE on the channels of the slots that shard holds (each user's
  channel carries the user's hash tag, so it lives with the user's data).
  Not redis-py's ClusterPubSub: it moves subscriptions between nodes in
  background tasks of its own after a slot moves, so the listener could
  not know when to re-read the inboxes, and a move it misses is silent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.crc import key_slot

from server import keys
from server.storage.cluster_topology import ClusterTopology, parse_addr
from server.storage.cluster_view import tag_for_slot
from server.storage.pubsub_reader import PubSubReader
from server.storage.redis_conn import RedisHandles


@dataclass
class Feed:
    """One pub/sub connection, and how channels are (un)subscribed on it."""

    name: str
    reader: PubSubReader
    #: This instance's ping channel on this connection.
    ping: str
    subscribe: Callable[..., Awaitable[Any]]
    unsubscribe: Callable[..., Awaitable[Any]]
    #: Monotonic time the ping came back (0: not yet).
    last_ping: float = 0.0


class Channels(Protocol):
    """Opens the feeds of the current topology and says which feed carries a channel."""

    #: The command that publishes on a channel of these feeds.
    publish_command: str

    def open(self, instance_id: str) -> list[Feed]: ...

    def feed_of(self, feeds: list[Feed], channel: str) -> Feed | None:
        """The feed carrying `channel`; None when the feeds are stale (rebuild them)."""
        ...


class PrimaryChannels:
    """Every channel on one connection to the primary."""

    publish_command = "PUBLISH"

    def __init__(self, primary: Redis) -> None:
        self._primary = primary

    def open(self, instance_id: str) -> list[Feed]:
        reader = PubSubReader(self._primary)
        return [Feed("primary", reader, keys.instance_channel(instance_id),
                     reader.pubsub.subscribe, reader.pubsub.unsubscribe)]

    def feed_of(self, feeds: list[Feed], channel: str) -> Feed | None:
        return feeds[0] if feeds else None


class ShardChannels:
    """Each channel on a connection to the primary of its slot's shard."""

    publish_command = "SPUBLISH"

    def __init__(self, handles: RedisHandles, topology: ClusterTopology) -> None:
        self._handles = handles
        self._topology = topology

    def open(self, instance_id: str) -> list[Feed]:
        feeds = []
        for addr, slot in sorted(self._topology.first_slots().items()):
            reader = PubSubReader(self._handles.writer(parse_addr(addr)))
            feeds.append(Feed(addr, reader, keys.instance_channel_in(instance_id,
                                                                    tag_for_slot(slot)),
                              per_slot(reader.pubsub.ssubscribe),
                              per_slot(reader.pubsub.sunsubscribe)))
        return feeds

    def feed_of(self, feeds: list[Feed], channel: str) -> Feed | None:
        owners = self._topology.state.owners
        owner = owners[key_slot(channel.encode())] if owners else None
        return next((feed for feed in feeds if feed.name == owner), None)


def per_slot(command: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """SSUBSCRIBE and SUNSUBSCRIBE take channels of one slot per call."""

    async def run(*channels: str) -> None:
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
        for group in by_slot.values():
            await command(*group)

    return run
