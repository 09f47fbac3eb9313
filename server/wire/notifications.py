"""What instances publish to each other on a user's channel (no I/O here).

    {"k":"msg","seq":S,"prev":P,"m":M}   a new message; M null for a retry's
                                         notification (receivers re-read the inbox)
    {"k":"del","origin":CONN_ID}         the account was deleted from that connection
    {"k":"end","s":{SHA:REASON},"origin":CONN_ID}
                                         these tokens were revoked (from that connection,
                                         which hears no session_ended)
    {"k":"msgs","n":[NOTE,...]}          several "msg" notifications of one channel, in
                                         order: one PUBLISH per recipient per batch
                                         (an instance of a version before it ignores
                                         the batch; its sweep pushes the messages)

Receiving a message is the hot path of an instance, so it is split with one
regex instead of parsing and re-encoding the message: the message's JSON as
orjson wrote it here is the JSON the push frame needs. A payload in any
other shape (another writer's key order, say) is parsed as JSON.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from server.wire import protocol

#: A new-message notification exactly as `message` writes it (orjson is
#: compact and keeps key order): seq, prev, and the message's JSON.
_MESSAGE = re.compile(
    r'\{"k":"msg","seq":"([0-9]+-[0-9]+)","prev":(?:"([0-9]+-[0-9]+)"|null),'
    r'"m":(\{.*\}|null)\}',
    re.DOTALL,
)
#: protocol.message_event(message) is this + the message's JSON + "}".
_EVENT_HEAD = '{"event":"message","message":'


_BATCH_HEAD = '{"k":"msgs","n":['
#: Between two notes of a batch. It cannot occur inside a note: in a JSON
#: string every quote is escaped, and a note's message has no key "k".
_BATCH_SEP = '},{"k":"msg",'


def batch(notes: list[bytes]) -> bytes:
    """One payload for several `message` notifications of one channel, in order."""
    if len(notes) == 1:
        return notes[0]
    return b'{"k":"msgs","n":[' + b",".join(notes) + b"]}"


def unbatch(data: str) -> list[str]:
    """The notifications a payload holds, in order (itself unless it is a batch)."""
    if not data.startswith(_BATCH_HEAD):
        return [data]
    inner = data[len(_BATCH_HEAD):-2]
    parts = inner.split(_BATCH_SEP)
    if len(parts) == 1:
        return [inner]
    head = _BATCH_SEP[2:]
    return [parts[0] + "}", *(head + p + "}" for p in parts[1:-1]), head + parts[-1]]


def message(seq: str, prev: str | None, msg: dict[str, Any] | None) -> bytes:
    return orjson.dumps({"k": "msg", "seq": seq, "prev": prev, "m": msg})


def deleted(origin: str) -> bytes:
    return orjson.dumps({"k": "del", "origin": origin})


def parse_message(data: str) -> tuple[str, str | None, bytes | None] | None:
    """(seq, prev, push frame or None) of a new-message notification; None for other kinds.

    The frame is the bytes protocol.message_event(message) gives.
    """
    match = _MESSAGE.fullmatch(data)
    if match is not None:
        seq, prev, body = match.groups()
        return seq, prev, None if body == "null" else (_EVENT_HEAD + body + "}").encode()
    note = orjson.loads(data)
    if note.get("k") != "msg":
        return None
    msg = note.get("m")
    return note["seq"], note.get("prev"), None if msg is None else protocol.message_event(msg)


def deleted_origin(data: str) -> str | None:
    """The connection an account deletion came from ("" if none); None for other kinds."""
    note = orjson.loads(data)
    if note.get("k") != "del":
        return None
    origin = note.get("origin")
    return "" if origin is None else str(origin)


def ended(sessions: dict[str, str], origin: str) -> bytes:
    """Tokens (sha256 -> reason) revoked by the connection `origin`."""
    return orjson.dumps({"k": "end", "s": sessions, "origin": origin})


def ended_sessions(data: str) -> tuple[dict[str, str], str] | None:
    """(token sha256 -> reason, origin) of a revocation note; None for other kinds."""
    note = orjson.loads(data)
    if note.get("k") != "end" or not isinstance(note.get("s"), dict):
        return None
    sessions = {str(h): str(r) for h, r in note["s"].items()}
    return sessions, str(note.get("origin") or "")
