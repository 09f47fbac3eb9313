"""Move slots between primaries: IMPORTING/MIGRATING, MIGRATE the keys, SETSLOT NODE.

Slots move in groups, each step pipelined over the group (a SETSLOT waits
for nodes.conf to be written and for the node's replicas: one round trip
per slot and step would double the time). Every step is safe to repeat,
so a move cut short (Ctrl-C, a crash of this process) is finished by
running it again: the target's own view says whether it already owns a
slot; otherwise the slot is (re)opened on both sides and the keys still on
the source are migrated (REPLACE: while a slot is MIGRATING the source's
copy of a key it still holds is the current one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from deploy.redis_sentinel.procutil import SetError

from .clusternode import ClusterNode, NodeLine, cluster_nodes, parse_nodes

KEYS_PER_MIGRATE = 100
SLOTS_PER_STEP = 32
MIGRATE_TIMEOUT_MS = 10_000


def _myself(node: ClusterNode) -> NodeLine:
    for line in cluster_nodes(node) or []:
        if "myself" in line.flags:
            return line
    raise SetError(f"{node.host}:{node.port} does not answer CLUSTER NODES")


def _call(client: redis.Redis, *args: object) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _pipe(client: redis.Redis, commands: Sequence[tuple[object, ...]]) -> None:
    """Send commands in one round trip; the first error is raised."""
    if not commands:
        return
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    pipe.execute()


class SlotMover:
    """Moves slots onto one target; holds a connection to each live primary."""

    def __init__(self, target: ClusterNode, primaries: list[ClusterNode]) -> None:
        """primaries: every live primary (the sources among them), told each new owner."""
        self.target = target
        self.target_id = _myself(target).id
        self.by_id = {i: p for i, p in node_ids(primaries).items() if p is not target}
        self.clients = {node_id: node.client(timeout=MIGRATE_TIMEOUT_MS / 1000 + 5)
                        for node_id, node in self.by_id.items()}
        self.target_client = target.client(timeout=5)

    def close(self) -> None:
        for client in (*self.clients.values(), self.target_client):
            client.close()

    def _owners(self) -> dict[int, str]:
        """Slot -> owner id, as the target sees it."""
        text = str(_call(self.target_client, "CLUSTER", "NODES"))
        return {slot: line.id for line in parse_nodes(text) if line.is_primary
                for start, end in line.slots for slot in range(start, end + 1)}

    def _migrate_keys(self, source_id: str, slot: int) -> int:
        client, moved = self.clients[source_id], 0
        auth = ["AUTH", self.target.password] if self.target.password else []
        while True:
            keys = _call(client, "CLUSTER", "GETKEYSINSLOT", slot, KEYS_PER_MIGRATE)
            if not keys:
                return moved
            _call(client, "MIGRATE", self.target.host, self.target.port, "", 0,
                  MIGRATE_TIMEOUT_MS, "REPLACE", *auth, "KEYS", *keys)
            moved += len(keys)

    def move(self, slots: list[int]) -> int:
        """Make the target own `slots`, keys included; returns the keys migrated."""
        owners = self._owners()
        opening = [(slot, owners.get(slot)) for slot in slots
                   if owners.get(slot) != self.target_id]
        by_source: dict[str, list[int]] = {}
        for slot, source_id in opening:
            if source_id is None or source_id not in self.clients:
                raise SetError(f"slot {slot}: its owner {source_id} is not a live primary")
            by_source.setdefault(source_id, []).append(slot)
        _pipe(self.target_client, [("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
                                   for slot, source_id in opening])
        for source_id, own in by_source.items():
            _pipe(self.clients[source_id], [("CLUSTER", "SETSLOT", slot, "MIGRATING",
                                             self.target_id) for slot in own])
        moved = sum(self._migrate_keys(source_id, slot)
                    for source_id, own in by_source.items() for slot in own)
        # Target first: from then on it answers for the slots, whoever asks.
        done = [("CLUSTER", "SETSLOT", slot, "NODE", self.target_id) for slot in slots]
        _pipe(self.target_client, done)
        for node_id, client in self.clients.items():
            try:
                _pipe(client, done)
            except redis.ResponseError as exc:
                node = self.by_id[node_id]
                raise SetError(f"{node.host}:{node.port} refused the new owner of slots "
                               f"{slots[0]}..{slots[-1]}: {exc}") from None
        return moved


def node_ids(nodes: list[ClusterNode]) -> dict[str, ClusterNode]:
    """Node id -> node, for the nodes that answer."""
    found: dict[str, ClusterNode] = {}
    for node in nodes:
        try:
            found[_myself(node).id] = node
        except SetError:
            continue
    return found


def open_slots(nodes: list[ClusterNode]) -> dict[int, str]:
    """Slots some node has IMPORTING or MIGRATING -> the id of the node
    receiving it ([slot->-id] on the source, [slot-<-id] on the target)."""
    found: dict[int, str] = {}
    for node in nodes:
        try:
            me = _myself(node)
        except SetError:
            continue
        for word in me.migrating:
            body = word.strip("[]")
            if "->-" in body:
                slot, target_id = body.split("->-")
                found[int(slot)] = target_id
            elif "-<-" in body:
                found[int(body.split("-<-")[0])] = me.id
    return found
