"""The wire protocol of PROTOCOL.md, without I/O.

Frames in (text or bytes), typed requests out; results and events in, JSON
bytes out. Each op's arguments are checked in server/wire/arguments.py.
Everything here is pure and unit-tested in tests/unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from server.wire import arguments, errors, reply_size

RequestId = str | int | None


@dataclass(frozen=True, kw_only=True)
class Request:
    """A well-formed request: `op`, its `id`, and validated arguments."""

    op: str
    id: RequestId
    args: dict[str, Any]


class Rejected(Exception):
    """A frame or request that is answered with an error reply."""

    def __init__(self, request_id: RequestId, error: errors.ChatError) -> None:
        super().__init__(error.detail)
        self.request_id = request_id
        self.error = error


PRE_AUTH_OPS = frozenset({"register", "login", "resume"})
OPS = PRE_AUTH_OPS | {"logout", "change_password", "list_users", "send", "fetch", "ack",
                      "delete_account"}

#: Why a session ended (the `reason` of the session_ended event).
SESSION_END_REASONS = ("logout", "password_changed", "replaced", "expired")
#: Ops whose replies are bounded in bytes (--max-reply-bytes): args["room"].
SIZED_OPS = frozenset({"fetch", "list_users"})


def parse_frame(
    frame: str | bytes, *, binary: bool, limits: arguments.Limits, authenticated: bool = True
) -> Request:
    """Parse and validate one frame; raise Rejected with the reply to send.

    Without a session, an op other than register/login/resume is
    `unauthenticated` whatever its arguments (PROTOCOL.md: "every other op
    before that gets unauthenticated").
    """
    if binary:
        raise Rejected(None, errors.BadRequest("binary frames are not accepted; send JSON text"))
    data = _loads(frame)
    if not isinstance(data, dict):
        raise Rejected(None, errors.BadRequest("frame must be a JSON object"))
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise Rejected(None, errors.BadRequest("`id` must be a string or an integer"))
    op = data.get("op")
    if not isinstance(op, str):
        raise Rejected(request_id, errors.BadRequest("`op` must be a string"))
    if op not in OPS:
        raise Rejected(request_id, errors.BadRequest(f"unknown op {op[:40]!r}"))
    if not authenticated and op not in PRE_AUTH_OPS:
        raise Rejected(request_id, errors.Unauthenticated("log in or resume first"))
    try:
        args = arguments.VALIDATORS[op](data, limits)
    except errors.ChatError as exc:
        raise Rejected(request_id, exc) from None
    if op in SIZED_OPS:
        # Bytes the items may take, the id echoed in the reply left out.
        args["room"] = reply_size.room(request_id, limits.max_reply_bytes)
    return Request(op=op, id=request_id, args=args)


def _loads(frame: str | bytes) -> Any:
    """orjson, or the standard parser for valid JSON orjson refuses.

    orjson reads integers beyond 64 bits as floats, but an `id` may be any
    JSON integer.
    What the standard parser accepts beyond JSON (NaN, Infinity) and text
    that is not UTF-8 (lone surrogates) stay `bad_request`.
    """
    try:
        data = orjson.loads(frame)
        # orjson reads an integer beyond 64 bits as a float; re-read exactly.
        if not (isinstance(data, dict) and isinstance(data.get("id"), float)):
            return data
        first_error: Exception = ValueError("inexact number")
    except orjson.JSONDecodeError as exc:
        first_error = exc
    try:
        data = json.loads(frame, parse_constant=_no_constant)
        json.dumps(data, ensure_ascii=False).encode()  # rejects lone surrogates
        return data
    except (ValueError, RecursionError):
        raise Rejected(
            None, errors.BadRequest(f"frame is not valid JSON: {first_error}")
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _dumps(obj: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # an integer id beyond 64 bits, echoed back as given
        return json.dumps(obj, ensure_ascii=False).encode()


# Replies and events --------------------------------------------------------

def ok(request_id: RequestId, **result: Any) -> bytes:
    return _dumps({"id": request_id, "ok": True, **result})


def error(request_id: RequestId, exc: errors.ChatError) -> bytes:
    return _dumps({"id": request_id, "ok": False, "error": exc.code, "detail": exc.detail})


def message(*, msg_id: str, sender: str, to: str, body: str, ts: int, seq: str) -> dict[str, Any]:
    return {"msg_id": msg_id, "from": sender, "to": to, "body": body, "ts": ts, "seq": seq}


def message_event(msg: dict[str, Any]) -> bytes:
    return orjson.dumps({"event": "message", "message": msg})


def account_deleted_event() -> bytes:
    return orjson.dumps({"event": "account_deleted"})


def shutdown_event(retry_after_ms: int) -> bytes:
    return orjson.dumps({"event": "shutdown", "retry_after_ms": retry_after_ms})


def session_ended_event(reason: str) -> bytes:
    return orjson.dumps({"event": "session_ended", "reason": reason})
