"""What the nodes of a Redis Cluster say about its shards, and the rules read from them.

Pure (no I/O): server/storage/cluster_topology.py asks every node it knows
CLUSTER SHARDS and each shard's primary INFO replication, and applies these.

A slot belongs to the primary a majority of the cluster's nodes name for it,
as the Sentinel mode trusts the primary a majority of Sentinels names: a
primary cut off by a partition still names itself, but the majority side
has promoted another, and a write acked on the minority side would be lost
when it rejoins as a replica.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.crc import key_slot

from server.storage.sentinel_majority import majority
from server.storage.sentinel_view import addr_of

SLOTS = 16384
#: Replica health values (CLUSTER SHARDS) that the cluster will not promote.
NOT_PROMOTABLE = ("fail", "failed")


@dataclass
class ShardView:
    """One shard as one node describes it."""

    primary: str
    #: Replica "ip:port" -> its health as that node sees it.
    replicas: dict[str, str] = field(default_factory=dict)
    #: Inclusive slot ranges.
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def promotable(self) -> set[str]:
        """Replicas the cluster could promote: known and not marked failed."""
        return {addr for addr, health in self.replicas.items() if health not in NOT_PROMOTABLE}


def parse_shards(reply: Iterable[Mapping[str, Any]]) -> list[ShardView]:
    """CLUSTER SHARDS as redis-py parses it; shards without a primary are left out."""
    shards: list[ShardView] = []
    for shard in reply:
        slots = [int(s) for s in shard.get("slots", [])]
        ranges = list(zip(slots[::2], slots[1::2], strict=True))
        primary = None
        replicas: dict[str, str] = {}
        for node in shard.get("nodes", []):
            addr = addr_of(node.get("ip") or node.get("endpoint"), node.get("port"))
            health = str(node.get("health", ""))
            if node.get("role") == "master" and health not in NOT_PROMOTABLE:
                primary = addr
            elif node.get("role") != "master":
                replicas[addr] = health
        if primary is not None:
            shards.append(ShardView(primary=primary, replicas=replicas, ranges=ranges))
    return shards


def slot_owners(shards: list[ShardView]) -> list[str | None]:
    """The primary of each slot in one node's answer (None: not covered)."""
    owners: list[str | None] = [None] * SLOTS
    for shard in shards:
        for low, high in shard.ranges:
            owners[low:high + 1] = [shard.primary] * (high - low + 1)
    return owners


def agreed_owners(answers: list[list[ShardView]], total: int) -> list[str | None]:
    """Each slot's primary as a majority of `total` nodes name it (None: no majority)."""
    maps = [slot_owners(answer) for answer in answers]
    if len(maps) * 2 <= total:
        return [None] * SLOTS
    if all(m == maps[0] for m in maps):  # the usual case: everyone agrees
        return maps[0]
    return [majority(column, total) for column in zip(*maps, strict=True)]


def nodes_named(answers: Iterable[list[ShardView]]) -> set[str]:
    """Every node some answer names."""
    return {addr for answer in answers for shard in answer
            for addr in (shard.primary, *shard.replicas)}


_tags: dict[int, str] = {}
_candidates = itertools.count()


def tag_for_slot(slot: int) -> str:
    """A short hash tag whose keys fall in `slot`: the smallest number that does
    (the candidates tried so far remembered for every slot they hit, so all
    16384 slots together cost one pass, about 160k CRCs).

    The group commit's INCR must write a key of the shard it waits on, each
    shard's pub/sub self-ping needs a channel of its own shard, and the
    directory's pending sets are one per slot (data/directory.py).
    """
    while slot not in _tags:
        n = next(_candidates)
        _tags.setdefault(key_slot(str(n).encode()), str(n))
    return _tags[slot]


def all_slot_tags() -> dict[int, str]:
    """Every slot's tag, the same tag_for_slot gives: one pass of ~0.3 s, to run
    in a thread (asyncio.to_thread) and hand to learn_slot_tags on the loop."""
    tags: dict[int, str] = {}
    n = 0
    while len(tags) < SLOTS:
        tags.setdefault(key_slot(str(n).encode()), str(n))
        n += 1
    return tags


def learn_slot_tags(tags: dict[int, str]) -> None:
    _tags.update(tags)
