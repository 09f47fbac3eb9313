"""server/fencing.decide: what a poll does about each replica (pure, no Redis)."""

from __future__ import annotations

import pytest
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError, ResponseError

from server.storage.fencing import NodeState, acks_needed, decide, is_refusal, replica_progress
from server.storage.ledger import WaitLedger

P = "10.0.0.1:6379"
A = "10.0.0.2:6379"
C = "10.0.0.3:6379"


def in_sync(addr: str, priority: int = 100) -> NodeState:
    return NodeState(addr=addr, promotable=True, online=True, caught_up=True, reachable=True,
                     role="slave", following=P, priority=priority)


def stale_master(addr: str = C, priority: int = 100, record: int | None = None) -> NodeState:
    return NodeState(addr=addr, promotable=True, reachable=True, role="master",
                     priority=priority, record=record)


def test_old_primary_back_as_master_is_fenced_repointed_and_not_waited_for() -> None:
    plan = decide(P, [in_sync(A), stale_master()], {A, C})
    assert plan.fence == {C: 100}
    assert plan.repoint == {C}
    assert plan.required == {A}
    assert plan.excluded_if_fenced == {C}


def test_returning_node_is_not_fenced_when_no_other_replica_is_in_sync() -> None:
    lagging_a = NodeState(addr=A, promotable=True, online=True, reachable=True, role="slave",
                          following=P, priority=100)
    plan = decide(P, [lagging_a, stale_master()], {A, C})
    assert plan.fence == {}
    assert plan.required == {A, C}  # refuse rather than ack without a holder
    assert plan.repoint == {C}  # still pointed at the primary at once


def test_returning_node_with_better_priority_than_every_holder_is_not_fenced() -> None:
    # Sentinel ranks priority before offset: it would win over A with less data.
    plan = decide(P, [in_sync(A, priority=100), stale_master(priority=10)], {A, C})
    assert plan.fence == {}
    assert C in plan.required


def test_operators_priority_zero_is_never_touched() -> None:
    plan = decide(P, [in_sync(A), stale_master(priority=0)], {A})
    assert (plan.fence, plan.lift, plan.forget) == ({}, {}, frozenset())
    assert plan.required == {A}


def test_fenced_node_not_yet_in_sync_stays_out_of_the_required_set() -> None:
    syncing = NodeState(addr=C, promotable=True, reachable=True, role="slave", following=P,
                        priority=0, record=100)
    plan = decide(P, [in_sync(A), syncing], {A, C})
    assert plan.required == {A}
    assert plan.lift == {} and plan.fence == {} and plan.repoint == frozenset()


def test_fenced_node_in_sync_is_required_and_its_fence_lifted() -> None:
    fenced = NodeState(**{**in_sync(C, priority=0).__dict__, "record": 100})
    plan = decide(P, [in_sync(A), fenced], {A})
    assert plan.required == {A, C}
    assert plan.lift == {C: 100}


def test_fence_left_by_a_crashed_instance_is_lifted_by_whoever_sees_it_in_sync() -> None:
    fenced = NodeState(addr=C, promotable=False, online=True, caught_up=True, reachable=True,
                       role="slave", following=P, priority=0, record=50)
    plan = decide(P, [in_sync(A), fenced], {A})
    assert plan.lift == {C: 50}


def test_fenced_node_is_lifted_and_required_when_the_other_replica_is_gone() -> None:
    gone = NodeState(addr=A, promotable=False)
    syncing = NodeState(addr=C, promotable=False, reachable=True, role="slave", following=P,
                        priority=0, record=100)
    plan = decide(P, [gone, syncing], set())
    assert plan.lift == {C: 100}
    assert plan.required == {C}  # writes wait (and refuse) until it holds them


def test_record_of_a_half_done_lift_is_forgotten_once_in_sync() -> None:
    back = NodeState(**{**in_sync(C).__dict__, "record": 100})
    plan = decide(P, [in_sync(A), back], {A, C})
    assert plan.forget == {C}
    assert plan.lift == {}


def test_online_replica_with_priority_is_required_even_if_sentinel_still_reads_zero() -> None:
    plan = decide(P, [in_sync(A), in_sync(C)], {A})  # Sentinel's last INFO: priority 0
    assert plan.required == {A, C}


def test_replica_catching_up_online_is_not_fenced() -> None:
    lagging = NodeState(addr=C, promotable=True, online=True, reachable=True, role="slave",
                        following=P, priority=100)
    plan = decide(P, [in_sync(A), lagging], {A, C})
    assert plan.fence == {}
    assert plan.required == {A, C}


def test_refused_config_keeps_the_rule_without_fencing() -> None:
    plan = decide(P, [in_sync(A), stale_master()], {A, C}, allowed=False)
    assert plan.required == {A, C}
    assert (plan.fence, plan.repoint) == ({}, frozenset())


def test_unreachable_node_is_neither_fenced_nor_repointed() -> None:
    plan = decide(P, [in_sync(A), NodeState(addr=C, promotable=True)], {A, C})
    assert plan.fence == {} and plan.repoint == frozenset()
    assert plan.required == {A, C}


def test_replica_progress_reads_online_and_caught_up_from_the_primarys_info() -> None:
    info = {
        "role": "master", "master_repl_offset": 5_000_000,
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 4_999_000,
                   "lag": 0},
        "slave1": {"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 1_000,
                   "lag": 0},
        "slave2": {"ip": "10.0.0.4", "port": 6379, "state": "wait_bgsave", "offset": 0,
                   "lag": 0},
    }
    assert replica_progress(info) == {
        "10.0.0.2:6379": (True, True), "10.0.0.3:6379": (True, False),
        "10.0.0.4:6379": (False, False),
    }


def test_wait_ledger_tells_when_no_wait_from_an_older_snapshot_is_in_flight() -> None:
    ledger = WaitLedger()
    ledger.advance()
    old = ledger.enter()  # a batch read snapshot 1
    since = ledger.advance()  # snapshot 2 requires the node
    fresh = ledger.enter()
    assert not ledger.none_before(since)
    ledger.leave(old)
    assert ledger.none_before(since)
    ledger.leave(fresh)
    assert ledger.none_before(ledger.advance())


def test_node_sentinel_is_promoting_is_waited_for_never_fenced_or_repointed() -> None:
    # SLAVEOF NO ONE from Sentinel: it reports master while the majority
    # still names the old primary. A write acked without it would be lost.
    promoting = NodeState(addr=C, promotable=True, reachable=True, role="master",
                          priority=100, promoting=True)
    plan = decide(P, [in_sync(A), promoting], {A})
    assert plan.required == {A, C}
    assert (plan.fence, plan.repoint) == ({}, frozenset())


def test_wait_counts_every_connected_replica_so_a_fenced_ack_cannot_stand_in() -> None:
    # required={A}; C is fenced but online and acks: WAIT 1 could be met by C alone.
    assert acks_needed({A}, {A, C}, set()) == 2
    assert acks_needed({A}, {A}, set()) == 1
    # A replica every Sentinel reports down (frozen) cannot ack: not counted.
    assert acks_needed({A}, {A, C}, {C}) == 1
    # A required replica not online yet (resyncing) is still waited for.
    assert acks_needed({A, C}, {A}, set()) == 2


def blipped(addr: str = C, **extra: object) -> NodeState:
    """A replica of the primary that the primary's INFO does not show online."""
    return NodeState(**{"addr": addr, "promotable": True, "reachable": True, "role": "slave",
                        "following": P, "priority": 100, **extra})  # type: ignore[arg-type]


def test_replica_missing_from_the_primarys_info_for_one_poll_is_waited_for_not_fenced() -> None:
    plan = decide(P, [in_sync(A), blipped(absent_polls=1)], {A, C})
    assert plan.fence == {}
    assert plan.required == {A, C}


def test_replica_missing_for_two_polls_is_fenced() -> None:
    plan = decide(P, [in_sync(A), blipped(absent_polls=2)], {A, C})
    assert plan.fence == {C: 100}
    assert plan.required == {A}


def test_replica_in_a_full_sync_is_fenced_at_once() -> None:
    plan = decide(P, [in_sync(A), blipped(absent_polls=1, syncing=True)], {A, C})
    assert plan.fence == {C: 100}


def test_replica_following_another_node_is_fenced_at_once() -> None:
    plan = decide(P, [in_sync(A), blipped(absent_polls=1, following="10.0.0.9:6379")], {A, C})
    assert plan.fence == {C: 100}


def test_a_fence_names_the_replicas_that_make_leaving_it_out_safe() -> None:
    plan = decide(P, [in_sync(A), stale_master()], {A, C})
    assert plan.anchors == {C: frozenset({A})}


def test_node_not_listed_by_a_sentinel_majority_is_neither_repointed_nor_fenced() -> None:
    # One Sentinel remembers an old replica, now a standalone Redis: REPLICAOF would wipe it.
    plan = decide(P, [in_sync(A), NodeState(**{**stale_master().__dict__, "listed": False})],
                  {A})
    assert plan.repoint == frozenset() and plan.fence == {}
    assert plan.required == {A}


def test_lift_because_no_other_replica_is_left_is_urgent() -> None:
    syncing = NodeState(addr=C, reachable=True, role="slave", following=P, priority=0,
                        record=100)
    plan = decide(P, [NodeState(addr=A), syncing], set())
    assert plan.urgent == {C}
    in_sync_fenced = NodeState(**{**in_sync(C, priority=0).__dict__, "record": 100})
    assert decide(P, [in_sync(A), in_sync_fenced], {A}).urgent == frozenset()


@pytest.mark.parametrize(("error", "refusal"), [
    (NoPermissionError("this user has no permissions to run the 'config|set' command"), True),
    (ResponseError("unknown command 'CONFIG', with args beginning with: 'SET'"), True),
    (ReadOnlyError("You can't write against a read only replica."), False),
    (OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), False),
    (ResponseError("BUSY Redis is busy running a script"), False),
])
def test_only_a_permission_or_unknown_command_error_is_a_refusal(
    error: Exception, refusal: bool,
) -> None:
    assert is_refusal(error) is refusal


def test_lift_of_a_node_ranked_above_the_holder_is_not_urgent() -> None:
    # C (recorded priority 50) would beat A on priority, so it is required;
    # A stays promotable with every write, so the lift may wait.
    fenced = NodeState(**{**in_sync(C, priority=0).__dict__, "record": 50})
    plan = decide(P, [in_sync(A), fenced], {A})
    assert plan.lift == {C: 50} and plan.urgent == frozenset()
