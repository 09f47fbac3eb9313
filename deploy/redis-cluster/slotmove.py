"""Move one slot between primaries: IMPORTING/MIGRATING, MIGRATE the keys, SETSLOT NODE.

Every step is safe to repeat, so a move cut short (Ctrl-C, a crash of this
process) is finished by running it again: the target's own view says
whether it already owns the slot; otherwise the slot is (re)opened on both
sides and the keys still on the source are migrated (REPLACE: while a slot
is MIGRATING the source's copy of a key it still holds is the current one).
"""

from __future__ import annotations

from typing import Any

import redis

from deploy.redis_sentinel.procutil import SetError

from .clusternode import ClusterNode, NodeLine, cluster_nodes, parse_nodes

BATCH = 100  # keys per MIGRATE
MIGRATE_TIMEOUT_MS = 10_000


def _myself(node: ClusterNode) -> NodeLine:
    for line in cluster_nodes(node) or []:
        if "myself" in line.flags:
            return line
    raise SetError(f"{node.host}:{node.port} does not answer CLUSTER NODES")


def _call(client: redis.Redis, *args: object) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


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

    def _owner(self, slot: int) -> str | None:
        """The slot's owner as the target sees it."""
        text = str(_call(self.target_client, "CLUSTER", "NODES"))
        for line in parse_nodes(text):
            if line.is_primary and any(s <= slot <= e for s, e in line.slots):
                return line.id
        return None

    def _migrate_keys(self, source_id: str, slot: int) -> int:
        client, moved = self.clients[source_id], 0
        auth = ["AUTH", self.target.password] if self.target.password else []
        while True:
            keys = _call(client, "CLUSTER", "GETKEYSINSLOT", slot, BATCH)
            if not keys:
                return moved
            _call(client, "MIGRATE", self.target.host, self.target.port, "", 0,
                  MIGRATE_TIMEOUT_MS, "REPLACE", *auth, "KEYS", *keys)
            moved += len(keys)

    def move(self, slot: int) -> int:
        """Make the target own `slot`, keys included; returns the keys migrated."""
        moved = 0
        source_id = self._owner(slot)
        if source_id != self.target_id:
            if source_id is None or source_id not in self.clients:
                raise SetError(f"slot {slot}: its owner {source_id} is not a live primary")
            _call(self.target_client, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            _call(self.clients[source_id], "CLUSTER", "SETSLOT", slot, "MIGRATING", self.target_id)
            moved = self._migrate_keys(source_id, slot)
        # Target first: from then on it answers for the slot, whoever asks.
        _call(self.target_client, "CLUSTER", "SETSLOT", slot, "NODE", self.target_id)
        for node_id, client in self.clients.items():
            try:
                _call(client, "CLUSTER", "SETSLOT", slot, "NODE", self.target_id)
            except redis.ResponseError as exc:
                node = self.by_id[node_id]
                raise SetError(f"slot {slot}: {node.host}:{node.port} refused the new "
                               f"owner: {exc}") from None
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
