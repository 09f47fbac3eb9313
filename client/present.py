"""How the CLI shows things: message lines, error lines, exit codes (pure)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from client.errors import (
    AccountDeleted,
    BadCredentials,
    BadRequest,
    BadToken,
    ChatError,
    ClientClosed,
    InvalidPassword,
    InvalidUsername,
    NoSuchUser,
    RetryableError,
    TooLarge,
    Unauthenticated,
    Unconfirmed,
    UsernameTaken,
)
from client.models import Message

__all__ = [
    "EXIT_AUTH",
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "error_line",
    "exit_code_for",
    "format_message",
    "json_line",
]

EXIT_OK = 0
EXIT_ERROR = 1  # internal / unexpected server error
EXIT_USAGE = 2  # bad arguments or input the server rejects as malformed
EXIT_AUTH = 3  # bad credentials, bad token, not logged in, account deleted
EXIT_NOT_FOUND = 4  # no such user
EXIT_UNAVAILABLE = 5  # no server reachable, unavailable, rate limited, timed out
EXIT_CONFLICT = 6  # username taken

_EXIT_BY_CLASS: list[tuple[type[ChatError], int]] = [
    (RetryableError, EXIT_UNAVAILABLE),
    (ClientClosed, EXIT_UNAVAILABLE),
    (Unconfirmed, EXIT_UNAVAILABLE),  # not resent past the dedupe window
    (BadCredentials, EXIT_AUTH),
    (BadToken, EXIT_AUTH),
    (Unauthenticated, EXIT_AUTH),
    (AccountDeleted, EXIT_AUTH),
    (NoSuchUser, EXIT_NOT_FOUND),
    (UsernameTaken, EXIT_CONFLICT),
    (BadRequest, EXIT_USAGE),
    (InvalidUsername, EXIT_USAGE),
    (InvalidPassword, EXIT_USAGE),
    (TooLarge, EXIT_USAGE),
]


def exit_code_for(error: ChatError) -> int:
    for cls, code in _EXIT_BY_CLASS:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


def error_line(error: ChatError, *, as_json: bool = False) -> str:
    """One line describing `error`, without a traceback."""
    if as_json:
        return json_line({"error": error.code, "detail": error.detail})
    detail = " ".join(error.detail.split())  # keep it on one line
    return f"error: {error.code}: {detail}" if detail else f"error: {error.code}"


def format_time(ts_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000))


def format_message(message: Message) -> str:
    """`[HH:MM:SS] alice: text`, the time in local time."""
    return f"[{format_time(message.ts)}] {message.sender}: {message.body}"


def json_line(data: Any) -> str:
    return orjson.dumps(data).decode()
