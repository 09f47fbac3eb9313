"""server/wire/protocol.py: reply and event builders, and the error codes they carry."""

from __future__ import annotations

import re

import orjson
import pytest

from server.wire import errors
from server.wire.protocol import (
    account_deleted_event,
    error,
    message,
    message_event,
    ok,
    shutdown_event,
)
from tests.unit.protocol_helpers import UUID, rejected_raw

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
