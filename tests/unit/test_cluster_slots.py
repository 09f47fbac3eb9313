"""On a Redis Cluster a script call never spans two slots, and the slot map needs a majority."""

from __future__ import annotations

from typing import Any, cast

from redis.commands.core import AsyncScript
from redis.crc import key_slot

from server.data.messages import ack_call, send_call
from server.data.script_calls import ScriptCall, merge_calls
from server.storage.cluster_view import (
    SLOTS,
    agreed_owners,
    all_slot_tags,
    parse_shards,
    tag_for_slot,
)
from server.storage.redis_probe import own_slot

SEND = cast(AsyncScript, object())
ACK = cast(AsyncScript, object())


def slot(key: str) -> int:
    return key_slot(key.encode())


def send(to: str, n: int) -> ScriptCall:
    call_keys, args = send_call(sender="s", to=to, msg_id=f"m{n}", body="hi", now_ms=n,
                                dedupe=([f"chat:{{{to}}}:dedupe"], [1]), max_inbox=10,
                                max_pending=10, max_bytes=100)
    return SEND, call_keys, args, True


def batch() -> list[ScriptCall]:
    """Sends and acks to many users, runs to one user among them, as a busy batch holds."""
    users = [f"user{i}" for i in range(40)]
    calls: list[ScriptCall] = []
    for n, to in enumerate(users + users[:5] * 3 + users[::-1]):
        calls.append(send(to, n))
        if n % 7 == 0:
            calls.append((ACK, *ack_call(to, "1-1"), True))
    return calls


def test_no_merged_call_on_a_cluster_holds_keys_of_two_slots() -> None:
    for script, call_keys, _, _ in merge_calls(batch(), slot):
        assert len({slot(key) for key in call_keys}) == 1, (script, call_keys)


def test_the_same_batch_merged_for_one_primary_spans_slots() -> None:
    # What the test above guards against: this batch does mix slots when allowed.
    assert any(len({slot(key) for key in call_keys}) > 1
               for _, call_keys, _, _ in merge_calls(batch()))


def test_neighbouring_calls_of_one_slot_still_merge_on_a_cluster() -> None:
    calls = [send("bob", n) for n in range(5)]
    merged = merge_calls(calls, slot)
    assert [count for *_, count in merged] == [5]


def test_with_one_primary_neighbouring_calls_to_different_users_merge() -> None:
    merged = merge_calls([send("bob", 1), send("carol", 2)])
    assert [count for *_, count in merged] == [2]


def test_a_merged_call_keeps_every_call_in_order() -> None:
    calls = batch()
    merged = merge_calls(calls, slot)
    assert [key for _, call_keys, _, _ in merged for key in call_keys] == \
        [key for _, call_keys, _, _ in calls for key in call_keys]


def test_a_tag_for_a_slot_puts_keys_in_that_slot() -> None:
    for wanted in (0, 5461, 16383):
        assert slot(f"chat:commit:{{{tag_for_slot(wanted)}}}") == wanted


def test_every_slot_has_the_smallest_tag_whichever_way_it_was_found() -> None:
    # Instances name a slot's pending set by its tag: all must find the same one.
    table = all_slot_tags()
    assert len(table) == SLOTS
    for wanted in (0, 1, 777, 16383):
        assert table[wanted] == tag_for_slot(wanted)
        assert not any(slot(str(n)) == wanted for n in range(int(table[wanted])))


def test_a_node_holds_the_first_slot_of_its_own_line_in_cluster_nodes() -> None:
    nodes = {"127.0.0.1:7000": {"flags": "master", "slots": [["0", "5460"]]},
             "127.0.0.1:7001": {"flags": "myself,master", "slots": [["5461", "10922"]]}}
    assert own_slot(nodes) == 5461
    nodes["127.0.0.1:7001"]["slots"] = []
    assert own_slot(nodes) is None


def shards_reply(owner_of_all: str) -> list[dict[str, Any]]:
    """CLUSTER SHARDS of a one-shard cluster as redis-py parses it."""
    host, port = owner_of_all.split(":")
    return [{"slots": [0, SLOTS - 1], "nodes": [
        {"ip": host, "port": int(port), "role": "master", "health": "online"},
        {"ip": "10.0.0.9", "port": 7001, "role": "replica", "health": "online"},
        {"ip": "10.0.0.8", "port": 7002, "role": "replica", "health": "failed"},
    ]}]


def test_a_replica_marked_failed_is_not_promotable() -> None:
    (shard,) = parse_shards(shards_reply("10.0.0.1:7000"))
    assert shard.promotable == {"10.0.0.9:7001"}


def test_a_slot_belongs_to_the_primary_a_majority_of_all_nodes_names() -> None:
    new = parse_shards(shards_reply("10.0.0.2:7000"))
    old = parse_shards(shards_reply("10.0.0.1:7000"))
    assert agreed_owners([new, new, old], total=3)[100] == "10.0.0.2:7000"


def test_a_primary_named_only_by_a_minority_owns_no_slot() -> None:
    # A primary cut off with one other node: two of five nodes answer, both name it.
    old = parse_shards(shards_reply("10.0.0.1:7000"))
    assert set(agreed_owners([old, old], total=5)) == {None}
