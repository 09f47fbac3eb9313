"""The bounded (sender, msg_id) memory that makes delivery exactly-once for the user."""

from __future__ import annotations

from client.dedupe import SeenSet


def test_second_add_of_same_sender_and_msg_id_is_a_duplicate() -> None:
    seen = SeenSet(10)
    assert seen.add(("alice", "m1")) is True
    assert seen.add(("alice", "m1")) is False


def test_same_msg_id_from_different_senders_is_not_a_duplicate() -> None:
    seen = SeenSet(10)
    assert seen.add(("alice", "m1"))
    assert seen.add(("bob", "m1"))


def test_oldest_key_is_forgotten_beyond_capacity() -> None:
    seen = SeenSet(3)
    for i in range(4):
        seen.add(("a", str(i)))
    assert len(seen) == 3
    assert ("a", "0") not in seen
    assert ("a", "3") in seen


def test_a_seen_again_key_becomes_newest_and_survives_eviction() -> None:
    seen = SeenSet(2)
    seen.add(("a", "1"))
    seen.add(("a", "2"))
    seen.add(("a", "1"))  # touched: now newest
    seen.add(("a", "3"))
    assert ("a", "1") in seen
    assert ("a", "2") not in seen
