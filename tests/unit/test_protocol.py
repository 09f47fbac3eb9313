"""server/protocol.py: frame parsing, per-op validation, glob matching, reply builders."""

from __future__ import annotations

import json
import re
import string
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import errors, protocol
from server.protocol import (
    OPS,
    PRE_AUTH_OPS,
    Limits,
    Rejected,
    Request,
    account_deleted_event,
    error,
    glob_to_regex,
    is_valid_username,
    literal_prefix,
    message,
    message_event,
    ok,
    parse_frame,
    parse_seq,
    shutdown_event,
)

LIMITS = Limits()
UUID = "3f2b8c1e-9d4a-4c7e-8f10-2a6b5c9d0e11"


def parse(obj: Any, limits: Limits = LIMITS) -> Request:
    return parse_frame(orjson.dumps(obj).decode(), binary=False, limits=limits)


def rejected(obj: Any, limits: Limits = LIMITS) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse(obj, limits)
    return info.value


def rejected_raw(frame: str | bytes, *, binary: bool = False) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_frame(frame, binary=binary, limits=LIMITS)
    return info.value


def code_of(obj: Any, limits: Limits = LIMITS) -> str:
    return rejected(obj, limits).error.code


def send_frame(**override: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "send", "id": 1, "to": "bob", "body": "hi", "msg_id": UUID}
    frame.update(override)
    return {k: v for k, v in frame.items() if v is not _DROP}


def register_frame(**override: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "register", "id": 1, "username": "alice",
                             "password": "correct horse"}
    frame.update(override)
    return {k: v for k, v in frame.items() if v is not _DROP}


_DROP: Any = object()


# Frames ----------------------------------------------------------------------

def test_binary_frame_is_bad_request_with_null_id() -> None:
    rej = rejected_raw(orjson.dumps({"op": "fetch", "id": 5}), binary=True)
    assert rej.request_id is None
    assert rej.error.code == "bad_request"


def test_text_frame_given_as_utf8_bytes_is_parsed() -> None:
    req = parse_frame('{"op": "fetch", "id": "é"}'.encode(), binary=False, limits=LIMITS)
    assert req == Request(op="fetch", id="é", args={"limit": 100})


@pytest.mark.parametrize("frame", ["", "{", "nope", '{"op": "fetch", "id": 1,}', "{'id': 1}"])
def test_invalid_json_is_bad_request_with_null_id(frame: str) -> None:
    rej = rejected_raw(frame)
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


def test_invalid_utf8_bytes_are_bad_request_with_null_id() -> None:
    rej = rejected_raw(b'{"op": "fetch", "id": "\xff"}')
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


def test_lone_surrogate_in_text_is_bad_request_with_null_id() -> None:
    rej = rejected_raw('{"op": "fetch", "id": "\ud800"}')
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


def test_nesting_deeper_than_the_json_parser_allows_is_bad_request() -> None:
    rej = rejected_raw('{"id": 1, "op": "fetch", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


@pytest.mark.parametrize("value", [[], [{"op": "fetch", "id": 1}], "fetch", 1, 1.5, None, True])
def test_json_that_is_not_an_object_is_bad_request_with_null_id(value: Any) -> None:
    rej = rejected(value)
    assert (rej.request_id, rej.error.code) == (None, "bad_request")
    assert "object" in rej.error.detail


def test_missing_id_is_bad_request_with_null_id() -> None:
    rej = rejected({"op": "fetch"})
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


@pytest.mark.parametrize("bad_id", [True, False])
def test_bool_id_is_rejected(bad_id: bool) -> None:
    rej = rejected({"op": "fetch", "id": bad_id})
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


@pytest.mark.parametrize("bad_id", [None, 1.0, 2.5, [1], {"n": 1}])
def test_id_that_is_neither_string_nor_integer_is_rejected_with_null_id(bad_id: Any) -> None:
    rej = rejected({"op": "fetch", "id": bad_id})
    assert (rej.request_id, rej.error.code) == (None, "bad_request")


@pytest.mark.parametrize("good_id", [0, -7, 2**63 - 1, "", "abc", "ü-1"])
def test_string_and_integer_ids_are_carried_into_the_request(good_id: str | int) -> None:
    assert parse({"op": "fetch", "id": good_id}).id == good_id


def test_id_is_carried_into_rejections_after_it_is_parsed() -> None:
    assert rejected({"op": "fetch", "id": "r1", "limit": 0}).request_id == "r1"


def test_missing_op_is_bad_request_with_the_id() -> None:
    rej = rejected({"id": 9})
    assert (rej.request_id, rej.error.code) == (9, "bad_request")


@pytest.mark.parametrize("op", [None, 1, ["fetch"], {"op": "fetch"}, True])
def test_op_that_is_not_a_string_is_bad_request_with_the_id(op: Any) -> None:
    rej = rejected({"id": 9, "op": op})
    assert (rej.request_id, rej.error.code) == (9, "bad_request")


@pytest.mark.parametrize("op", ["", "Fetch", "FETCH", "subscribe", " fetch", "fetch "])
def test_unknown_op_is_bad_request_with_the_id(op: str) -> None:
    rej = rejected({"id": "x", "op": op})
    assert (rej.request_id, rej.error.code) == ("x", "bad_request")


def test_unknown_op_detail_quotes_only_the_start_of_a_long_name() -> None:
    rej = rejected({"id": 1, "op": "z" * 10_000})
    assert "z" * 40 in rej.error.detail
    assert len(rej.error.detail) < 100


def test_rejected_carries_the_error_detail_as_its_message() -> None:
    rej = rejected({"id": 1, "op": "fetch", "limit": 0})
    assert str(rej) == rej.error.detail
    assert "limit" in rej.error.detail


def test_unknown_extra_arguments_are_ignored() -> None:
    req = parse({"op": "fetch", "id": 1, "limit": 3, "future_field": [1, 2]})
    assert req.args == {"limit": 3}


def test_every_op_of_the_protocol_is_known_and_three_work_before_login() -> None:
    assert {"register", "login", "resume", "logout", "list_users", "send", "fetch", "ack",
            "delete_account"} == OPS
    assert {"register", "login", "resume"} == PRE_AUTH_OPS


# register ----------------------------------------------------------------------

def test_register_with_valid_name_and_password_is_accepted() -> None:
    req = parse(register_frame())
    assert req == Request(op="register", id=1,
                          args={"username": "alice", "password": "correct horse"})


@pytest.mark.parametrize("field", ["username", "password"])
def test_register_missing_argument_is_bad_request(field: str) -> None:
    assert code_of(register_frame(**{field: _DROP})) == "bad_request"


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", [None, 5, ["alice"], {"a": 1}, True])
def test_register_argument_of_wrong_type_is_bad_request(field: str, value: Any) -> None:
    assert code_of(register_frame(**{field: value})) == "bad_request"


def test_mistyped_password_is_bad_request_even_with_an_invalid_username() -> None:
    assert code_of(register_frame(username="Not Valid", password=12345678)) == "bad_request"


def test_username_with_uppercase_is_invalid_username() -> None:
    assert code_of(register_frame(username="Alice")) == "invalid_username"


def test_empty_username_is_invalid_username() -> None:
    assert code_of(register_frame(username="")) == "invalid_username"


def test_username_of_32_characters_is_valid_and_33_is_invalid_username() -> None:
    assert parse(register_frame(username="a" * 32)).args["username"] == "a" * 32
    assert code_of(register_frame(username="a" * 33)) == "invalid_username"


@pytest.mark.parametrize("name", ["_alice", ".alice", "-alice"])
def test_username_starting_with_punctuation_is_invalid_username(name: str) -> None:
    assert code_of(register_frame(username=name)) == "invalid_username"


@pytest.mark.parametrize("name", ["7", "0day", "a_b.c-d", "z9.", "a--"])
def test_username_of_allowed_characters_starting_with_letter_or_digit_is_valid(name: str) -> None:
    assert parse(register_frame(username=name)).args["username"] == name


@pytest.mark.parametrize(
    "name",
    ["al ice", "al@ice", "alice\n", "\nalice", "ålice", "alicé", "１abc", "al:ice", "al/ice",
     "al*", "a?", "al\x00"],
)
def test_username_with_a_character_outside_the_allowed_set_is_invalid_username(name: str) -> None:
    assert code_of(register_frame(username=name)) == "invalid_username"


def test_password_of_7_characters_is_invalid_password() -> None:
    assert code_of(register_frame(password="1234567")) == "invalid_password"


def test_password_of_129_characters_is_invalid_password() -> None:
    assert code_of(register_frame(password="p" * 129)) == "invalid_password"


@pytest.mark.parametrize("password", ["p" * 8, "p" * 128, "é" * 8, "        "])
def test_password_of_8_to_128_characters_is_accepted(password: str) -> None:
    assert parse(register_frame(password=password)).args["password"] == password


# login / resume / logout / delete_account ---------------------------------------

def test_login_passes_any_strings_through_for_bad_credentials_later() -> None:
    req = parse({"op": "login", "id": 1, "username": "NOT A NAME", "password": "x"})
    assert req.args == {"username": "NOT A NAME", "password": "x"}


@pytest.mark.parametrize("frame", [
    {"op": "login", "id": 1, "username": "alice"},
    {"op": "login", "id": 1, "password": "correct horse"},
    {"op": "login", "id": 1, "username": 1, "password": "correct horse"},
    {"op": "login", "id": 1, "username": "alice", "password": ["x"]},
])
def test_login_missing_or_mistyped_argument_is_bad_request(frame: dict[str, Any]) -> None:
    assert code_of(frame) == "bad_request"


def test_resume_takes_the_token_string() -> None:
    assert parse({"op": "resume", "id": 1, "token": "alice.abc"}).args == {"token": "alice.abc"}


@pytest.mark.parametrize("token", [_DROP, None, 123, {"t": "x"}])
def test_resume_without_a_string_token_is_bad_request(token: Any) -> None:
    frame = {"op": "resume", "id": 1, "token": token}
    assert code_of({k: v for k, v in frame.items() if v is not _DROP}) == "bad_request"


def test_logout_has_no_arguments() -> None:
    assert parse({"op": "logout", "id": 1, "token": "ignored"}).args == {}


def test_delete_account_takes_the_password_without_length_rules() -> None:
    assert parse({"op": "delete_account", "id": 1, "password": "x"}).args == {"password": "x"}


@pytest.mark.parametrize("password", [_DROP, None, 12345678])
def test_delete_account_without_a_string_password_is_bad_request(password: Any) -> None:
    frame = {"op": "delete_account", "id": 1, "password": password}
    assert code_of({k: v for k, v in frame.items() if v is not _DROP}) == "bad_request"


# limit (fetch and list_users) ------------------------------------------------------

def test_fetch_limit_defaults_to_100() -> None:
    assert parse({"op": "fetch", "id": 1}).args == {"limit": 100}


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
    assert parse({"op": "list_users", "id": 1}).args == {"pattern": "*", "limit": 100,
                                                         "cursor": None}


def test_list_users_passes_pattern_limit_and_cursor() -> None:
    args = parse({"op": "list_users", "id": 1, "pattern": "a?[x]*", "limit": 7,
                  "cursor": "alice"}).args
    assert args == {"pattern": "a?[x]*", "limit": 7, "cursor": "alice"}


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


# glob ---------------------------------------------------------------------------------

def matches(pattern: str, name: str) -> bool:
    return glob_to_regex(pattern).fullmatch(name) is not None


def test_star_matches_any_run_of_characters_including_none() -> None:
    assert matches("*", "")
    assert matches("*", "alice")
    assert matches("a*e", "ae")
    assert matches("a*e", "alice")
    assert not matches("a*e", "alicx")


def test_question_mark_matches_exactly_one_character() -> None:
    assert matches("b?b", "bob")
    assert not matches("b?b", "bb")
    assert not matches("b?b", "boob")
    assert matches("??", "ab")
    assert not matches("??", "a")


def test_glob_brackets_and_backslash_are_literal() -> None:
    assert matches("[ab]", "[ab]")
    assert not matches("[ab]", "a")
    assert matches("a\\*", "a\\xyz")
    assert not matches("a\\*", "a*")
    assert matches("\\?", "\\x")
    assert not matches("\\?", "?x")


@pytest.mark.parametrize(("pattern", "regex_would_match"), [
    (".", "a"), ("a.c", "abc"), ("a+", "aa"), ("(a)", "a"), ("a{2}", "aa"), ("^a$", "a"),
    ("a|b", "b"), ("[a-c]", "b"),
])
def test_regex_metacharacters_in_a_glob_are_literal(pattern: str,
                                                    regex_would_match: str) -> None:
    assert matches(pattern, pattern)
    assert not matches(pattern, regex_would_match)


@pytest.mark.timeout(10)
def test_glob_with_many_stars_cannot_backtrack_exponentially() -> None:
    # `*` -> `.*` took seconds for 12 stars and forever for 128 (one request
    # could stall the server); every name must take microseconds.
    started = time.perf_counter()
    for pattern in ("*a" * 128 + "b", "*?" * 100 + "*x", "*ab?" * 60 + "*c"):
        assert glob_to_regex(pattern).fullmatch("a" * 32) is None
        assert glob_to_regex(pattern).fullmatch("ab" * 16) is None
    assert time.perf_counter() - started < 1.0


def test_glob_matches_the_whole_name_not_a_part() -> None:
    assert not matches("li", "alice")
    assert not matches("ali", "alice")
    assert matches("*li*", "alice")


def test_wildcards_span_any_character_even_newline() -> None:
    assert matches("a*b", "a\nb")
    assert matches("a?b", "a\nb")


def test_empty_glob_matches_only_the_empty_name() -> None:
    assert matches("", "")
    assert not matches("", "a")


@pytest.mark.parametrize(("pattern", "prefix"), [
    ("abc", "abc"), ("abc*", "abc"), ("ab*c", "ab"), ("ab?c", "ab"), ("*abc", ""), ("?", ""),
    ("", ""), ("[a]*", "[a]"), ("a\\*", "a\\"), ("a.b?*", "a.b"),
])
def test_literal_prefix_is_the_text_before_the_first_wildcard(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def reference_match(pattern: str, name: str) -> bool:
    """The PROTOCOL.md glob, as a plain recursive matcher."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(reference_match(rest, name[i:]) for i in range(len(name) + 1))
    if not name:
        return False
    return (head == "?" or head == name[0]) and reference_match(rest, name[1:])


GLOB_ALPHABET = "ab.*?[]\\-^$(|)+{}\n"
NAME_ALPHABET = "ab.*?[]\\-^$(|)+{}\n"


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(GLOB_ALPHABET, max_size=8), name=st.text(NAME_ALPHABET, max_size=8))
def test_glob_agrees_with_a_reference_matcher(pattern: str, name: str) -> None:
    assert matches(pattern, name) == reference_match(pattern, name)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text("ab*?", max_size=6), name=st.text("ab", max_size=8))
def test_glob_agrees_with_a_reference_matcher_on_dense_wildcards(pattern: str, name: str) -> None:
    assert matches(pattern, name) == reference_match(pattern, name)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(GLOB_ALPHABET, max_size=8), name=st.text(NAME_ALPHABET, max_size=8))
def test_every_name_a_glob_matches_starts_with_its_literal_prefix(pattern: str, name: str) -> None:
    if matches(pattern, name):
        assert name.startswith(literal_prefix(pattern))


# usernames ------------------------------------------------------------------------------

NAME_START = string.ascii_lowercase + string.digits
NAME_REST = NAME_START + "_.-"
valid_usernames = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(NAME_START),
    st.text(NAME_REST, max_size=31),
)


@settings(max_examples=200, deadline=None)
@given(name=valid_usernames)
def test_valid_usernames_always_pass(name: str) -> None:
    assert is_valid_username(name)
    assert parse(register_frame(username=name)).args["username"] == name


@settings(max_examples=200, deadline=None)
@given(name=valid_usernames,
       # Lone surrogates cannot be encoded to a frame at all (test_fuzz sends them escaped).
       bad=st.characters(exclude_categories=["Cs"]).filter(lambda c: c not in NAME_REST),
       where=st.integers(min_value=0, max_value=32))
def test_a_name_with_any_other_character_is_invalid_username(name: str, bad: str,
                                                             where: int) -> None:
    broken = name[:where] + bad + name[where:]
    assert not is_valid_username(broken)
    assert code_of(register_frame(username=broken)) == "invalid_username"


# parse_frame never raises anything but Rejected --------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ARG_NAMES = ["username", "password", "token", "pattern", "limit", "cursor", "to", "body",
             "msg_id", "seq"]
requestish = st.fixed_dictionaries(
    {"op": st.sampled_from(sorted(OPS)) | json_values,
     "id": st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=5) | json_values},
    optional={name: st.text(max_size=40) | json_values for name in ARG_NAMES},
)


def parse_or_reject(frame: str | bytes, binary: bool, limits: Limits = LIMITS) -> None:
    try:
        request = parse_frame(frame, binary=binary, limits=limits)
    except Rejected as rej:
        assert isinstance(rej.error, errors.ChatError)
        assert rej.request_id is None or isinstance(rej.request_id, str | int)
        assert rej.error.detail
        orjson.loads(error(rej.request_id, rej.error))
    else:
        assert request.op in OPS
        assert isinstance(request.id, str | int) and not isinstance(request.id, bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.text(), binary=st.booleans())
def test_parse_frame_only_rejects_arbitrary_text(frame: str, binary: bool) -> None:
    parse_or_reject(frame, binary)


@settings(max_examples=300, deadline=None)
@given(frame=st.binary(), binary=st.booleans())
def test_parse_frame_only_rejects_arbitrary_bytes(frame: bytes, binary: bool) -> None:
    parse_or_reject(frame, binary)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_parse_frame_only_rejects_arbitrary_json(value: Any) -> None:
    parse_or_reject(orjson.dumps(value), False)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=requestish, max_body=st.integers(min_value=1, max_value=50),
       max_list=st.integers(min_value=1, max_value=2000))
def test_parse_frame_only_rejects_request_shaped_objects(frame: dict[str, Any], max_body: int,
                                                         max_list: int) -> None:
    limits = Limits(max_body_chars=max_body, max_list_limit=max_list)
    parse_or_reject(orjson.dumps(frame), False, limits)


# replies and events ---------------------------------------------------------------------

def test_ok_reply_carries_id_ok_and_result_fields() -> None:
    assert orjson.loads(ok(7, username="alice", unread=3)) == {
        "id": 7, "ok": True, "username": "alice", "unread": 3}


def test_ok_reply_without_result_and_with_string_id() -> None:
    assert orjson.loads(ok("r-1")) == {"id": "r-1", "ok": True}


def test_error_reply_carries_code_and_detail() -> None:
    assert orjson.loads(error("r", errors.TooLarge("body too long"))) == {
        "id": "r", "ok": False, "error": "too_large", "detail": "body too long"}


def test_error_reply_to_an_unparseable_frame_has_null_id() -> None:
    rej = rejected_raw("not json")
    assert orjson.loads(error(rej.request_id, rej.error))["id"] is None


@pytest.mark.parametrize("cls", errors.ALL_CODES)
def test_every_error_code_round_trips_with_a_default_detail(cls: type[errors.ChatError]) -> None:
    reply = orjson.loads(error(1, cls()))
    assert reply["error"] == cls.code
    assert reply["detail"]


def test_error_codes_are_exactly_those_of_the_protocol() -> None:
    assert {cls.code for cls in errors.ALL_CODES} == {
        "bad_request", "unauthenticated", "invalid_username", "invalid_password",
        "username_taken", "bad_credentials", "bad_token", "no_such_user", "too_large",
        "rate_limited", "unavailable", "internal"}
    assert {cls.code for cls in errors.ALL_CODES if cls.retryable} == {
        "unavailable", "rate_limited"}


def test_message_object_has_the_protocol_fields() -> None:
    msg = message(msg_id=UUID, sender="alice", to="bob", body="hi ☃", ts=1700000000123,
                  seq="1700000000123-0")
    assert msg == {"msg_id": UUID, "from": "alice", "to": "bob", "body": "hi ☃",
                   "ts": 1700000000123, "seq": "1700000000123-0"}


def test_message_event_round_trips() -> None:
    msg = message(msg_id="m1", sender="a", to="b", body="x\ny", ts=1, seq="1-0")
    assert orjson.loads(message_event(msg)) == {"event": "message", "message": msg}


def test_account_deleted_event_round_trips() -> None:
    assert orjson.loads(account_deleted_event()) == {"event": "account_deleted"}


def test_shutdown_event_round_trips() -> None:
    assert orjson.loads(shutdown_event(1500)) == {"event": "shutdown", "retry_after_ms": 1500}


def test_replies_are_single_line_utf8_json_text() -> None:
    frame = ok(1, body="line\nbreak ☃")
    assert b"\n" not in frame
    assert re.fullmatch(rb"\{.*\}", frame)
    frame.decode("utf-8")


def test_integer_id_beyond_64_bits_is_kept_and_echoed() -> None:
    big = 2**70
    request = protocol.parse_frame(
        f'{{"op": "fetch", "id": {big}}}', binary=False, limits=protocol.Limits()
    )
    assert request.id == big
    assert json.loads(protocol.ok(request.id, messages=[]))["id"] == big
    rejected = protocol.error(big, errors.BadRequest("x"))
    assert json.loads(rejected)["id"] == big


def test_nan_and_infinity_are_not_json() -> None:
    for frame in ('{"op": "fetch", "id": 1, "limit": NaN}', '{"op": "fetch", "id": Infinity}'):
        with pytest.raises(protocol.Rejected) as caught:
            protocol.parse_frame(frame, binary=False, limits=protocol.Limits())
        assert caught.value.request_id is None
        assert caught.value.error.code == "bad_request"


def test_lone_surrogate_escape_stays_bad_request() -> None:
    frame = '{"op": "send", "id": 1, "to": "bob", "body": "\\ud800", "msg_id": "m"}'
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse_frame(frame, binary=False, limits=protocol.Limits())
    assert caught.value.error.code == "bad_request"


def test_out_of_range_big_limit_is_bad_request_with_the_id() -> None:
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse_frame(
            f'{{"op": "fetch", "id": 7, "limit": {2**80}}}', binary=False,
            limits=protocol.Limits(),
        )
    assert caught.value.request_id == 7
    assert caught.value.error.code == "bad_request"
