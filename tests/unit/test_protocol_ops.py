"""server/wire/protocol.py: argument validation of fetch, list_users, send and ack; parse_seq."""

from __future__ import annotations

from typing import Any

import pytest

from server.wire.arguments import Limits, parse_seq
from tests.unit.protocol_helpers import _DROP, UUID, code_of, parse, send_frame

# limit (fetch and list_users) ------------------------------------------------------

def test_fetch_limit_defaults_to_100() -> None:
    assert parse({"op": "fetch", "id": 1}).args["limit"] == 100


@pytest.mark.parametrize("op", ["fetch", "list_users"])
def test_limit_zero_is_bad_request(op: str) -> None:
    assert code_of({"op": op, "id": 1, "limit": 0}) == "bad_request"


@pytest.mark.parametrize("op", ["fetch", "list_users"])
def test_negative_limit_is_bad_request(op: str) -> None:
    assert code_of({"op": op, "id": 1, "limit": -1}) == "bad_request"


@pytest.mark.parametrize("op", ["fetch", "list_users"])
def test_limit_over_the_maximum_is_bad_request(op: str) -> None:
    assert parse({"op": op, "id": 1, "limit": 1000}).args["limit"] == 1000
    assert code_of({"op": op, "id": 1, "limit": 1001}) == "bad_request"


def test_limit_maximum_follows_the_configured_limits() -> None:
    tight = Limits(max_list_limit=5)
    assert parse({"op": "fetch", "id": 1, "limit": 5}, tight).args["limit"] == 5
    assert code_of({"op": "fetch", "id": 1, "limit": 6}, tight) == "bad_request"


@pytest.mark.parametrize("op", ["fetch", "list_users"])
def test_omitted_limit_is_accepted_when_the_server_is_configured_below_100(op: str) -> None:
    # PROTOCOL.md: limits are defaults the server may tighten; a request that
    # leaves `limit` out breaks no rule, so it must not get bad_request.
    limit = parse({"op": op, "id": 1}, Limits(max_list_limit=50)).args["limit"]
    assert 1 <= limit <= 50


@pytest.mark.parametrize("value", ["10", 10.0, 1.5, True, False, None, [10]])
def test_limit_of_wrong_type_is_bad_request(value: Any) -> None:
    assert code_of({"op": "fetch", "id": 1, "limit": value}) == "bad_request"


# list_users ------------------------------------------------------------------------

def test_list_users_defaults_to_every_name_first_page() -> None:
    args = parse({"op": "list_users", "id": 1}).args
    assert args | {"room": 0} == {"pattern": "*", "limit": 100, "cursor": None, "room": 0}


def test_list_users_passes_pattern_limit_and_cursor() -> None:
    args = parse({"op": "list_users", "id": 1, "pattern": "a?[x]*", "limit": 7,
                  "cursor": "alice"}).args
    assert args | {"room": 0} == {"pattern": "a?[x]*", "limit": 7, "cursor": "alice", "room": 0}


@pytest.mark.parametrize("pattern", [None, 1, ["*"]])
def test_list_users_pattern_that_is_not_a_string_is_bad_request(pattern: Any) -> None:
    assert code_of({"op": "list_users", "id": 1, "pattern": pattern}) == "bad_request"


def test_list_users_pattern_over_256_characters_is_bad_request() -> None:
    assert parse({"op": "list_users", "id": 1, "pattern": "*" * 256}).args["pattern"] == "*" * 256
    assert code_of({"op": "list_users", "id": 1, "pattern": "*" * 257}) == "bad_request"


@pytest.mark.parametrize("cursor", [1, ["a"], {"a": 1}, True, "c" * 65])
def test_list_users_cursor_that_is_not_a_previous_cursor_is_bad_request(cursor: Any) -> None:
    assert code_of({"op": "list_users", "id": 1, "cursor": cursor}) == "bad_request"


def test_list_users_cursor_of_64_characters_is_accepted() -> None:
    assert parse({"op": "list_users", "id": 1, "cursor": "c" * 64}).args["cursor"] == "c" * 64


# send ------------------------------------------------------------------------------

def test_send_with_valid_arguments_is_accepted() -> None:
    assert parse(send_frame()).args == {"to": "bob", "body": "hi", "msg_id": UUID}


@pytest.mark.parametrize("field", ["to", "body", "msg_id"])
def test_send_missing_argument_is_bad_request(field: str) -> None:
    assert code_of(send_frame(**{field: _DROP})) == "bad_request"


@pytest.mark.parametrize("field", ["to", "body", "msg_id"])
@pytest.mark.parametrize("value", [None, 7, ["x"], {"x": 1}, False])
def test_send_argument_of_wrong_type_is_bad_request(field: str, value: Any) -> None:
    assert code_of(send_frame(**{field: value})) == "bad_request"


def test_empty_body_is_bad_request() -> None:
    assert code_of(send_frame(body="")) == "bad_request"


def test_body_over_limit_is_too_large() -> None:
    assert parse(send_frame(body="b" * 4096)).args["body"] == "b" * 4096
    assert code_of(send_frame(body="b" * 4097)) == "too_large"


def test_body_limit_counts_characters_not_bytes() -> None:
    assert parse(send_frame(body="é" * 4096)).args["body"] == "é" * 4096


def test_body_limit_follows_the_configured_limits() -> None:
    small = Limits(max_body_chars=10)
    assert parse(send_frame(body="b" * 10), small).args["body"] == "b" * 10
    assert code_of(send_frame(body="b" * 11), small) == "too_large"


def test_whitespace_only_body_is_accepted() -> None:
    assert parse(send_frame(body=" \n")).args["body"] == " \n"


def test_empty_msg_id_is_bad_request() -> None:
    assert code_of(send_frame(msg_id="")) == "bad_request"


def test_msg_id_of_64_characters_is_accepted_and_65_is_bad_request() -> None:
    assert parse(send_frame(msg_id="m" * 64)).args["msg_id"] == "m" * 64
    assert code_of(send_frame(msg_id="m" * 65)) == "bad_request"


@pytest.mark.parametrize("msg_id", ["a b", "a.b", "a:b", "a/b", "ü", "a\n", "m*"])
def test_msg_id_with_a_character_outside_the_allowed_set_is_bad_request(msg_id: str) -> None:
    assert code_of(send_frame(msg_id=msg_id)) == "bad_request"


@pytest.mark.parametrize("msg_id", ["A", "z_9-Q", UUID, UUID.upper(), "-", "_"])
def test_msg_id_of_allowed_characters_is_accepted(msg_id: str) -> None:
    assert parse(send_frame(msg_id=msg_id)).args["msg_id"] == msg_id


@pytest.mark.parametrize("to", ["Bob", "", "b" * 33, "_bob", "bob!"])
def test_send_to_a_name_that_cannot_exist_is_no_such_user(to: str) -> None:
    assert code_of(send_frame(to=to)) == "no_such_user"


def test_send_to_self_is_not_rejected_by_validation() -> None:
    assert parse(send_frame(to="alice")).args["to"] == "alice"


# ack / seq ---------------------------------------------------------------------------

def test_ack_takes_a_seq() -> None:
    assert parse({"op": "ack", "id": 1, "seq": "1700000000000-3"}).args == {
        "seq": "1700000000000-3"}


@pytest.mark.parametrize("seq", ["", "1", "1-", "-1", "a-1", "1-2-3", " 1-2", "1-2 ", "1_2",
                                 "1-0x1", "+1-2", "1.5-2", "1" * 21 + "-0"])
def test_malformed_seq_is_bad_request(seq: str) -> None:
    assert code_of({"op": "ack", "id": 1, "seq": seq}) == "bad_request"


def test_ack_seq_with_non_ascii_digits_is_bad_request() -> None:
    assert code_of({"op": "ack", "id": 1, "seq": "١٧٠٠-٠"}) == "bad_request"


@pytest.mark.parametrize("seq", [_DROP, None, 5, ["1-2"]])
def test_ack_without_a_string_seq_is_bad_request(seq: Any) -> None:
    frame = {"op": "ack", "id": 1, "seq": seq}
    assert code_of({k: v for k, v in frame.items() if v is not _DROP}) == "bad_request"


def test_parse_seq_gives_milliseconds_and_counter() -> None:
    assert parse_seq("1700000000000-42") == (1700000000000, 42)
    assert parse_seq("0-0") == (0, 0)
    assert parse_seq("007-08") == (7, 8)


def test_parse_seq_accepts_twenty_digit_parts() -> None:
    big = "18446744073709551615"
    assert parse_seq(f"{big}-{big}") == (2**64 - 1, 2**64 - 1)


@pytest.mark.parametrize("seq", ["", "1", "1-", "x-1", "1-2-3", "1-2\n", "1" * 21 + "-1"])
def test_parse_seq_of_a_non_stream_id_is_none(seq: str) -> None:
    assert parse_seq(seq) is None


@pytest.mark.parametrize("seq", ["١-٢", "１-２", "1-²", "٣٤-0"])
def test_parse_seq_rejects_non_ascii_digits(seq: str) -> None:
    # Python's \d matches every Unicode digit; Redis stream ids are ASCII.
    assert parse_seq(seq) is None
