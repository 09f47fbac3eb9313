"""server/wire/reply_size.py: replies bounded in bytes, whatever the bodies hold."""

from __future__ import annotations

import orjson

from server.wire import protocol, reply_size


def message(body: str, n: int = 0) -> dict[str, object]:
    return protocol.message(msg_id=f"m{n}", sender="alice", to="bob", body=body,
                            ts=1_700_000_000_000 + n, seq=f"1700000000000-{n}")


def reply_bytes(messages: list[dict[str, object]], request_id: str | int) -> int:
    return len(protocol.ok(request_id, messages=messages, unread=10**12))


def test_control_character_bodies_are_cut_at_the_bound_counted_exactly() -> None:
    messages = [message("\x01" * 4096, n) for n in range(1000)]
    room = reply_size.room(7, 1024 * 1024)
    fit = reply_size.messages_within(messages, room)
    assert reply_bytes(messages[:fit], 7) <= 1024 * 1024
    assert reply_bytes(messages[:fit + 1], 7) > 1024 * 1024 - 30_000  # not cut far too early
    assert 40 <= fit < 45  # 4096 * 6 bytes each


def test_ordinary_messages_all_fit_without_exact_encoding() -> None:
    messages = [message("hello", n) for n in range(1000)]
    assert reply_size.messages_within(messages, reply_size.room(1, 1024 * 1024)) == 1000


def test_one_message_is_returned_even_when_it_alone_passes_the_bound() -> None:
    assert reply_size.messages_within([message("x" * 5000), message("y")], 100) == 1


def test_no_messages_fit_nothing() -> None:
    assert reply_size.messages_within([], 100) == 0


def test_a_long_string_id_leaves_less_room() -> None:
    long_id = "\x00" * 1000
    assert reply_size.room(long_id, 65536) <= 65536 - len(orjson.dumps(long_id))
    assert reply_size.room(2**70, 65536) == 65536 - len(str(2**70)) - reply_size.ENVELOPE_BYTES


def test_names_fit_by_their_json_size() -> None:
    assert reply_size.name_bytes("alice") == len(b'"alice",')
