"""wire/protocol.py: argument validation of register, login, resume, logout, delete_account."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.wire.arguments import Limits, is_valid_username
from server.wire.protocol import Rejected, Request, parse_frame
from tests.unit.protocol_helpers import _DROP, code_of, parse, register_frame

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


def test_logout_ends_this_token_only_unless_everywhere_is_given() -> None:
    assert parse({"op": "logout", "id": 1, "token": "ignored"}).args == {"everywhere": False}
    assert parse({"op": "logout", "id": 1, "everywhere": True}).args == {"everywhere": True}


@pytest.mark.parametrize("everywhere", [None, 1, "true", []])
def test_logout_everywhere_that_is_not_a_bool_is_bad_request(everywhere: Any) -> None:
    assert code_of({"op": "logout", "id": 1, "everywhere": everywhere}) == "bad_request"


def test_change_password_takes_the_current_and_the_new_password() -> None:
    args = parse({"op": "change_password", "id": 1, "password": "x", "new_password": "n" * 8}).args
    assert args == {"password": "x", "new_password": "n" * 8}


@pytest.mark.parametrize("new", ["short", "n" * 129])
def test_change_password_to_a_password_breaking_the_rules_is_invalid_password(new: str) -> None:
    frame = {"op": "change_password", "id": 1, "password": "current-pw", "new_password": new}
    assert code_of(frame) == "invalid_password"


@pytest.mark.parametrize("frame", [{"password": "current-pw"}, {"new_password": "n" * 8},
                                   {"password": 1, "new_password": "n" * 8}])
def test_change_password_without_both_strings_is_bad_request(frame: dict[str, Any]) -> None:
    assert code_of({"op": "change_password", "id": 1, **frame}) == "bad_request"


def test_delete_account_takes_the_password_without_length_rules() -> None:
    assert parse({"op": "delete_account", "id": 1, "password": "x"}).args == {"password": "x"}


@pytest.mark.parametrize("password", [_DROP, None, 12345678])
def test_delete_account_without_a_string_password_is_bad_request(password: Any) -> None:
    frame = {"op": "delete_account", "id": 1, "password": password}
    assert code_of({k: v for k, v in frame.items() if v is not _DROP}) == "bad_request"


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


@pytest.mark.parametrize("frame", [
    '{"op": "ack", "id": "r5", "seq": "1"}',
    '{"op": "fetch", "id": "r5", "limit": 0}',
    '{"op": "list_users", "id": "r5", "limit": 0}',
    '{"op": "send", "id": "r5", "to": "x", "body": "", "msg_id": "m"}',
    '{"op": "ack", "id": "r5"}',
    '{"op": "delete_account", "id": "r5"}',
    '{"op": "logout", "id": "r5"}',
])
def test_ops_needing_a_session_are_unauthenticated_before_their_arguments_are_checked(
    frame: str,
) -> None:
    with pytest.raises(Rejected) as caught:
        parse_frame(frame, binary=False, limits=Limits(), authenticated=False)
    assert caught.value.request_id == "r5"
    assert caught.value.error.code == "unauthenticated"


def test_pre_auth_ops_are_validated_without_a_session() -> None:
    with pytest.raises(Rejected) as caught:
        parse_frame('{"op": "register", "id": 1, "username": "A", "password": "password1"}',
                    binary=False, limits=Limits(), authenticated=False)
    assert caught.value.error.code == "invalid_username"
