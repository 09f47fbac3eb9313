"""Which returning Redis nodes to fence, repoint, lift, and which to wait for.

A pure function from what one topology poll observed to what to do; the
I/O lives in server/storage/fencer.py. docs/failure-model.md has the whole safety
argument; in short:

A node that comes back (an old primary restarted from its own config, a
replica after a crash or a partition) is listed by Sentinel as a replica and
could be promoted by it, so today a durable write waits for it, and every
write answers `unavailable` until it has synced (about ten seconds for a
stale primary, which Sentinel converts only after a while). Instead:

- fence it: CONFIG SET replica-priority 0, after recording the priority to
  restore (a key on the primary, so any instance can lift a fence another
  one left; fence_record.lua takes it only while an anchor stays unfenced),
  so Sentinel will not choose it. Only a node that came back (a master, a
  replica of another node, in a full sync, or missing for 2 polls; not a
  one-poll blip), and only one a Sentinel majority lists;
- repoint it at once (REPLICAOF the primary) when it claims to be a master
  of a stale history: a node whose history forks off the primary's is one
  Sentinel is promoting, and is left alone (and waited for);
- leave it out of the required set while fenced, but only while another
  replica holds every acked write and Sentinel ranks it at least as high
  (its priority number is not larger): Sentinel prefers the better priority,
  then the larger replication offset, and a fenced node lacking a write has
  the smaller offset (a node it last saw as master, offset 0);
- once online at the primary and caught up, require it again, and lift the
  fence only after every write, of any instance, that read the required set
  from before then has finished (server/storage/fencer.py orders that);
- never keep a node fenced when no other replica would be left to promote:
  lift it and wait for it (writes answer `unavailable` until it catches up).

A replica-priority 0 with no record is an operator's choice: never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoPermissionError, ResponseError

#: A replica this far behind the primary's offset (bytes) is still catching up.
CAUGHT_UP_BYTES = 1 << 20
#: ... or whose last ack is this many seconds old.
CAUGHT_UP_LAG_S = 1
#: A replica of the primary missing from its INFO this many polls in a row
#: is fenced like a returning node; one poll may be a link blip.
ABSENT_POLLS_TO_FENCE = 2


def is_refusal(exc: Exception) -> bool:
    """The servers' Redis user may not run this command (ACL, renamed or
    disabled command); anything else (READONLY, OOM, BUSY) may pass."""
    text = str(exc).lower()
    return isinstance(exc, NoPermissionError) or (
        isinstance(exc, ResponseError)
        and ("unknown command" in text or "noperm" in text or "unknown subcommand" in text))


def acks_needed(required: set[str], online: set[str], down: set[str]) -> int:
    """The `n` of `WAIT n`: WAIT counts acks, not names, so every connected
    replica that can ack (online at the primary, not reported down by every
    Sentinel) counts, or a fenced node's ack could stand in for a required one."""
    return len(required | (online - down))


@dataclass(frozen=True)
class NodeState:
    """One replica as one poll saw it (addresses are "ip:port")."""

    addr: str
    #: The Sentinels (of the majority) could promote it by their own rule.
    promotable: bool = False
    #: The primary's INFO shows it online (past its initial sync).
    online: bool = False
    #: Online, its acked offset close to the primary's, its last ack recent.
    caught_up: bool = False
    #: It answered INFO and CONFIG GET in this poll.
    reachable: bool = False
    #: Its own INFO: "master" or "slave"; None when not reachable.
    role: str | None = None
    #: The primary it replicates from ("ip:port"), if a replica.
    following: str | None = None
    #: Its replica-priority now; None when unknown (unreachable, CONFIG refused).
    priority: int | None = None
    #: The priority a fence recorded for it (to restore), or None: not fenced by us.
    record: int | None = None
    #: It reports master and its history forks off the primary's (its
    #: master_replid2 is the primary's replid): Sentinel is promoting it, or
    #: did just now. Never fenced or repointed; waited for, as before.
    promoting: bool = False
    #: Listed as a replica by a majority of the Sentinel views naming the primary;
    #: only such a node is fenced or repointed (Sentinels remember old ones).
    listed: bool = True
    #: Its own INFO says a full sync is in progress.
    syncing: bool = False
    #: Polls in a row the primary's INFO has not shown it online.
    absent_polls: int = 0

    @property
    def fenced(self) -> bool:
        return self.record is not None and self.priority == 0

    @property
    def deliberate(self) -> bool:
        """Priority 0 set by an operator, not by a fence: never touched."""
        return self.priority == 0 and self.record is None

    @property
    def healthy(self) -> bool:
        return self.online and self.caught_up

    def returning(self, primary: str) -> bool:
        """Came back rather than blipped: a master, a replica of another node,
        in a full sync, or not online at the primary for a few polls. A link
        blip or a partial resync is none of these: it stays waited for."""
        return self.role == "master" or self.syncing \
            or (self.following is not None and self.following != primary) \
            or self.absent_polls >= ABSENT_POLLS_TO_FENCE

    @property
    def configured(self) -> int | None:
        """The priority it has when not fenced."""
        return self.record if self.fenced else self.priority


@dataclass(frozen=True)
class Plan:
    #: The replicas a durable write waits for.
    required: frozenset[str]
    #: Record the priority, then CONFIG SET replica-priority 0: addr -> priority to record.
    fence: dict[str, int] = field(default_factory=dict)
    #: REPLICAOF the primary.
    repoint: frozenset[str] = frozenset()
    #: Restore the recorded priority (once no write from before it was required is in flight).
    lift: dict[str, int] = field(default_factory=dict)
    #: Lifts that may not wait (server/storage/fencer.py's delay): no other replica is
    #: left that Sentinel could promote with every acked write.
    urgent: frozenset[str] = frozenset()
    #: Drop a record whose priority is back (a lift whose instance died half-way).
    forget: frozenset[str] = frozenset()
    #: Nodes the plan leaves out of `required` only if their fence succeeds.
    excluded_if_fenced: frozenset[str] = frozenset()
    #: addr to fence -> the replicas that make leaving it out safe; the record
    #: is taken only while one of them is not fenced itself (fence_record.lua).
    anchors: dict[str, frozenset[str]] = field(default_factory=dict)


def _anchor(node: NodeState, base_required: set[str]) -> bool:
    """Holds every acked write (required, online, caught up) and is promotable."""
    return (node.addr in base_required and node.healthy and not node.fenced
            and node.priority is not None and node.priority > 0)


def anchors_of(node: NodeState, nodes: list[NodeState], base_required: set[str]) -> set[str]:
    """The other replicas that hold every acked write and that Sentinel ranks
    at least as high; leaving `node` out is safe while there is one."""
    mine = node.configured
    if mine is None or mine == 0:
        return set()
    return {
        other.addr for other in nodes
        if other.addr != node.addr and _anchor(other, base_required)
        and other.priority is not None and other.priority <= mine
    }


def safe_to_leave_out(node: NodeState, nodes: list[NodeState], base_required: set[str]) -> bool:
    return bool(anchors_of(node, nodes, base_required))


def decide(primary: str, nodes: list[NodeState], base_required: set[str],
           *, allowed: bool = True) -> Plan:
    """What to do about every replica, given `base_required` (the rule of
    server/storage/topology.py without fencing). `allowed` False (CONFIG refused):
    today's behaviour, the base rule alone."""
    if not allowed:
        return Plan(required=frozenset(base_required))
    required = set(base_required)
    fence: dict[str, int] = {}
    lift: dict[str, int] = {}
    repoint: set[str] = set()
    forget: set[str] = set()
    excluded: set[str] = set()
    anchors: dict[str, frozenset[str]] = {}
    urgent: set[str] = set()
    for node in nodes:
        if node.addr == primary:
            continue
        if node.promoting:
            # Acking without it would lose writes if its promotion completes.
            required.add(node.addr)
            continue
        if not node.listed and not node.online:
            continue  # an address one Sentinel or a stale record remembers: not ours
        if node.reachable and node.role == "master" and node.listed:
            repoint.add(node.addr)  # a stale primary (not one being promoted)
        if node.deliberate:
            continue
        held_by = anchors_of(node, nodes, base_required)
        safe = bool(held_by)
        if node.fenced:
            if node.healthy or (node.reachable and not safe):
                # Required first; the fencer lifts once older waits are done.
                required.add(node.addr)
                lift[node.addr] = node.configured or 0
                if not any(other.addr != node.addr and _anchor(other, base_required)
                           for other in nodes):
                    urgent.add(node.addr)  # nothing else Sentinel could promote
            elif safe:
                required.discard(node.addr)
            continue
        if node.record is not None and node.priority is not None and node.healthy:
            forget.add(node.addr)
        if node.online:
            if node.priority is not None and node.priority > 0:
                # Promotable whatever a Sentinel last read (it re-reads INFO
                # only every few seconds, e.g. just after a lift).
                required.add(node.addr)
            continue
        if node.reachable and node.listed and node.returning(primary) \
                and node.priority is not None \
                and node.priority > 0 and safe:
            fence[node.addr] = node.priority
            anchors[node.addr] = frozenset(held_by)
            if node.addr in required:
                excluded.add(node.addr)
                required.discard(node.addr)
    return Plan(required=frozenset(required), fence=fence, repoint=frozenset(repoint),
                lift=lift, forget=frozenset(forget), excluded_if_fenced=frozenset(excluded),
                anchors=anchors, urgent=frozenset(urgent))


def replica_progress(info: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    """addr -> (online, caught up) of every replica in the primary's INFO replication."""
    head = int(info.get("master_repl_offset", 0))
    out: dict[str, tuple[bool, bool]] = {}
    for key, value in info.items():
        if not (key.startswith(("slave", "replica")) and isinstance(value, dict)):
            continue
        online = value.get("state") == "online"
        caught_up = online and head - int(value.get("offset", 0)) <= CAUGHT_UP_BYTES \
            and int(value.get("lag", 0)) <= CAUGHT_UP_LAG_S
        out[f"{value['ip']}:{value['port']}"] = (online, caught_up)
    return out
