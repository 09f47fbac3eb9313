"""The wire protocol of PROTOCOL.md, without I/O.

Frames in (text or bytes), typed requests out; results and events in, JSON
bytes out. Everything here is pure and unit-tested in tests/unit.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from server.wire import errors, reply_size

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,31}")
MSG_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SEQ_RE = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
PATTERN_MAX = 256
CURSOR_MAX = 64

RequestId = str | int | None


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The configurable limits protocol validation needs."""

    max_body_chars: int = 4096
    max_list_limit: int = 1000
    max_reply_bytes: int = 1024 * 1024


@functools.cache
def limits(*, max_body_chars: int, max_list_limit: int,
           max_reply_bytes: int = 1024 * 1024) -> Limits:
    """One shared Limits per configuration (not one per connection)."""
    return Limits(max_body_chars=max_body_chars, max_list_limit=max_list_limit,
                  max_reply_bytes=max_reply_bytes)


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


def is_valid_username(name: str) -> bool:
    return USERNAME_RE.fullmatch(name) is not None


def parse_seq(seq: str) -> tuple[int, int] | None:
    """The (ms, n) of a stream id, or None when it is not one."""
    match = SEQ_RE.fullmatch(seq)
    if match is None:
        return None
    return int(match[1]), int(match[2])


def parse_frame(
    frame: str | bytes, *, binary: bool, limits: Limits, authenticated: bool = True
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
        args = _VALIDATORS[op](data, limits)
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


def _string(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if value is None:
        raise errors.BadRequest(f"missing argument `{name}`")
    if not isinstance(value, str):
        raise errors.BadRequest(f"`{name}` must be a string")
    return value


def _limit(data: dict[str, Any], limits: Limits) -> int:
    value = data.get("limit", min(100, limits.max_list_limit))
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.BadRequest("`limit` must be an integer")
    if not 1 <= value <= limits.max_list_limit:
        raise errors.BadRequest(f"`limit` must be between 1 and {limits.max_list_limit}")
    return value


def _username(name: str) -> str:
    if not is_valid_username(name):
        raise errors.InvalidUsername(
            "username must be 1-32 characters of a-z 0-9 _ . - starting with a letter or digit"
        )
    return name


def _password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise errors.InvalidPassword(
            f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"
        )
    return password


def _register(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    username, password = _string(data, "username"), _string(data, "password")
    return {"username": _username(username), "password": _password(password)}


def _login(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    # Names and passwords that break the rules cannot match an account:
    # they are bad_credentials, not a hint about which part was wrong.
    return {"username": _string(data, "username"), "password": _string(data, "password")}


def _resume(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {"token": _string(data, "token")}


def _logout(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    everywhere = data.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise errors.BadRequest("`everywhere` must be true or false")
    return {"everywhere": everywhere}


def _change_password(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    # A current password that breaks the rules cannot match: bad_credentials
    # (like login); the new one must follow them.
    current, new = _string(data, "password"), _string(data, "new_password")
    return {"password": current, "new_password": _password(new)}


def _list_users(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    pattern = _string(data, "pattern", "*")
    if len(pattern) > PATTERN_MAX:
        raise errors.BadRequest(f"`pattern` is longer than {PATTERN_MAX} characters")
    cursor = data.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > CURSOR_MAX):
        raise errors.BadRequest("`cursor` must be null or the cursor of a previous reply")
    return {"pattern": pattern, "limit": _limit(data, limits), "cursor": cursor}


def _send(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    to, body, msg_id = _string(data, "to"), _string(data, "body"), _string(data, "msg_id")
    if not body:
        raise errors.BadRequest("`body` must not be empty")
    if len(body) > limits.max_body_chars:
        raise errors.TooLarge(f"`body` is longer than {limits.max_body_chars} characters")
    if MSG_ID_RE.fullmatch(msg_id) is None:
        raise errors.BadRequest("`msg_id` must be 1-64 characters of A-Z a-z 0-9 _ -")
    if not is_valid_username(to):
        raise errors.NoSuchUser(f"no user {to[:40]!r}")
    return {"to": to, "body": body, "msg_id": msg_id}


def _fetch(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {"limit": _limit(data, limits)}


def _ack(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    seq = _string(data, "seq")
    if parse_seq(seq) is None:
        raise errors.BadRequest("`seq` must be the seq of a message")
    return {"seq": seq}


def _delete_account(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {"password": _string(data, "password")}


_VALIDATORS = {
    "register": _register,
    "login": _login,
    "resume": _resume,
    "logout": _logout,
    "change_password": _change_password,
    "list_users": _list_users,
    "send": _send,
    "fetch": _fetch,
    "ack": _ack,
    "delete_account": _delete_account,
}


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """`*` is any run, `?` any one character, everything else is literal (use fullmatch).

    A naive translation (`*` -> `.*`) backtracks exponentially: `*a*a*...*b`
    against `aaaa...` took seconds per name, so one list_users request could
    stall the server. Between stars every segment has a fixed length, so its
    leftmost place is always a right choice; an atomic group commits to it
    and matching stays O(len(name) * len(pattern)).
    """
    segments = [_segment(part) for part in pattern.split("*")]
    if len(segments) == 1:
        return re.compile(segments[0], re.DOTALL)
    first, *middle, last = segments
    body = "".join(f"(?>.*?{segment})" for segment in middle if segment)
    return re.compile(f"{first}{body}.*{last}", re.DOTALL)


def _segment(part: str) -> str:
    return "".join("." if c == "?" else re.escape(c) for c in part)


def literal_prefix(pattern: str) -> str:
    """The characters every match starts with (up to the first wildcard)."""
    for i, c in enumerate(pattern):
        if c in "*?":
            return pattern[:i]
    return pattern


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
