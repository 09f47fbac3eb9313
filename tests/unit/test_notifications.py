"""The payloads instances publish to each other, and the fast split of a new message."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from server.wire import notifications, protocol

SEQ = st.builds("{}-{}".format, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
MESSAGE = st.builds(
    protocol.message,
    msg_id=st.text(min_size=1, max_size=40), sender=st.text(max_size=20),
    to=st.text(max_size=20), body=st.text(max_size=200), ts=st.integers(0, 2**53), seq=SEQ,
)


@given(seq=SEQ, prev=st.none() | SEQ, message=MESSAGE)
def test_new_message_splits_into_the_push_frame_message_event_would_encode(
    seq: str, prev: str | None, message: dict[str, object]
) -> None:
    data = notifications.message(seq, prev, message).decode()
    assert notifications.parse_message(data) == (seq, prev, protocol.message_event(message))


@given(seq=SEQ, prev=st.none() | SEQ)
def test_retry_notification_has_no_frame(seq: str, prev: str | None) -> None:
    data = notifications.message(seq, prev, None).decode()
    assert notifications.parse_message(data) == (seq, prev, None)


def test_new_message_in_another_key_order_is_parsed_as_json() -> None:
    message = protocol.message(msg_id="m", sender="a", to="b", body="hi", ts=1, seq="5-1")
    data = orjson.dumps({"m": message, "prev": "5-0", "seq": "5-1", "k": "msg"}).decode()
    assert notifications.parse_message(data) == ("5-1", "5-0", protocol.message_event(message))


def test_body_that_looks_like_a_notification_stays_inside_the_message() -> None:
    body = '"}},"prev":null,"m":null}{"k":"msg","seq":"9-9"'
    message = protocol.message(msg_id="m", sender="a", to="b", body=body, ts=1, seq="5-1")
    data = notifications.message("5-1", "5-0", message).decode()
    assert notifications.parse_message(data) == ("5-1", "5-0", protocol.message_event(message))


def test_deletion_is_not_a_message_and_names_its_origin() -> None:
    data = notifications.deleted("conn-1").decode()
    assert notifications.parse_message(data) is None
    assert notifications.deleted_origin(data) == "conn-1"
    assert notifications.deleted_origin(notifications.message("1-1", None, None).decode()) is None


def test_a_revocation_note_names_each_token_with_its_reason_and_the_origin() -> None:
    data = notifications.ended({"h1": "logout", "h2": "replaced"}, "web-1/7").decode()
    assert notifications.ended_sessions(data) == ({"h1": "logout", "h2": "replaced"}, "web-1/7")
    assert notifications.parse_message(data) is None
    assert notifications.deleted_origin(data) is None


def test_other_notes_are_not_revocations() -> None:
    assert notifications.ended_sessions(notifications.deleted("c1").decode()) is None
    msg = notifications.message("1-0", None, None).decode()
    assert notifications.ended_sessions(msg) is None


def test_a_batch_of_one_channel_unbatches_into_its_notifications_in_order() -> None:
    hostile = {"msg_id": "m", "from": "a", "to": "b", "body": '},{"k":"msg",', "ts": 1,
               "seq": "1-0"}
    notes = [notifications.message("1-0", "0-0", hostile),
             notifications.message("1-1", "1-0", None),
             notifications.message("1-2", "1-1", dict(hostile, seq="1-2"))]
    data = notifications.batch(notes).decode()
    assert notifications.unbatch(data) == [n.decode() for n in notes]
    assert [notifications.parse_message(n) for n in notifications.unbatch(data)] == \
        [notifications.parse_message(n.decode()) for n in notes]


def test_a_single_notification_is_published_as_itself() -> None:
    note = notifications.message("1-0", "0-0", None)
    assert notifications.batch([note]) == note
    assert notifications.unbatch(note.decode()) == [note.decode()]


def test_a_version_without_batches_ignores_a_batch() -> None:
    notes = [notifications.message("1-0", "0-0", None), notifications.message("1-1", "1-0", None)]
    data = notifications.batch(notes).decode()
    assert notifications.parse_message(data) is None
    assert notifications.deleted_origin(data) is None
