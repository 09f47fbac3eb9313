"""Each op's arguments (PROTOCOL.md), checked without I/O.

server/wire/protocol.py reads the frame around them; here every op's
arguments are validated against the configured Limits, and list_users's
glob pattern becomes a safe regex. Pure and unit-tested in tests/unit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.wire import errors

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,31}")
MSG_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SEQ_RE = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
PATTERN_MAX = 256
CURSOR_MAX = 64


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


def is_valid_username(name: str) -> bool:
    return USERNAME_RE.fullmatch(name) is not None


def parse_seq(seq: str) -> tuple[int, int] | None:
    """The (ms, n) of a stream id, or None when it is not one."""
    match = SEQ_RE.fullmatch(seq)
    if match is None:
        return None
    return int(match[1]), int(match[2])


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


#: Each op's argument check: the frame in, its validated arguments out.
VALIDATORS: dict[str, Callable[[dict[str, Any], Limits], dict[str, Any]]] = {
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
