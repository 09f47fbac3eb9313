"""wire/protocol.py: parse_frame on whole frames: JSON, ids, ops, and what it never raises."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.wire import arguments, errors, protocol
from server.wire.arguments import Limits
from server.wire.protocol import OPS, PRE_AUTH_OPS, Rejected, Request, error, parse_frame
from server.wire.reply_size import room
from tests.unit.protocol_helpers import LIMITS, parse, rejected, rejected_raw

# Frames ----------------------------------------------------------------------

def test_binary_frame_is_bad_request_with_null_id() -> None:
    rej = rejected_raw(orjson.dumps({"op": "fetch", "id": 5}), binary=True)
    assert rej.request_id is None
    assert rej.error.code == "bad_request"


def test_text_frame_given_as_utf8_bytes_is_parsed() -> None:
    req = parse_frame('{"op": "fetch", "id": "é"}'.encode(), binary=False, limits=LIMITS)
    assert req == Request(op="fetch", id="é",
                          args={"limit": 100, "room": room("é", LIMITS.max_reply_bytes)})


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
    assert req.args == {"limit": 3, "room": room(1, LIMITS.max_reply_bytes)}


def test_every_op_of_the_protocol_is_known_and_three_work_before_login() -> None:
    assert {"register", "login", "resume", "logout", "list_users", "send", "fetch", "ack",
            "delete_account", "change_password"} == OPS
    assert {"register", "login", "resume"} == PRE_AUTH_OPS


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


# JSON edge cases: big integers, NaN, escaped surrogates ------------------------------------------

def test_integer_id_beyond_64_bits_is_kept_and_echoed() -> None:
    big = 2**70
    request = protocol.parse_frame(
        f'{{"op": "fetch", "id": {big}}}', binary=False, limits=arguments.Limits()
    )
    assert request.id == big
    assert json.loads(protocol.ok(request.id, messages=[]))["id"] == big
    rejected = protocol.error(big, errors.BadRequest("x"))
    assert json.loads(rejected)["id"] == big


def test_nan_and_infinity_are_not_json() -> None:
    for frame in ('{"op": "fetch", "id": 1, "limit": NaN}', '{"op": "fetch", "id": Infinity}'):
        with pytest.raises(protocol.Rejected) as caught:
            protocol.parse_frame(frame, binary=False, limits=arguments.Limits())
        assert caught.value.request_id is None
        assert caught.value.error.code == "bad_request"


def test_lone_surrogate_escape_stays_bad_request() -> None:
    frame = '{"op": "send", "id": 1, "to": "bob", "body": "\\ud800", "msg_id": "m"}'
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse_frame(frame, binary=False, limits=arguments.Limits())
    assert caught.value.error.code == "bad_request"


def test_out_of_range_big_limit_is_bad_request_with_the_id() -> None:
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse_frame(
            f'{{"op": "fetch", "id": 7, "limit": {2**80}}}', binary=False,
            limits=arguments.Limits(),
        )
    assert caught.value.request_id == 7
    assert caught.value.error.code == "bad_request"
