"""How the CLI shows things: message lines, error lines, exit codes (pure).

Whatever came over the network (bodies, names, error codes and details)
reaches the terminal only through `render`: a message must not be able to
drive the terminal (escape sequences retitle, clear or recolour it), rewrite
its own line (CR, BS, bidi overrides) or fake another message line.
"""

from __future__ import annotations

import re
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
    SessionEnded,
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
    "render",
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
    (SessionEnded, EXIT_AUTH),
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


#: Shown as escapes: C0 controls but tab and newline, DEL, C1 controls, and the
#: invisible, separator and bidi format characters (soft hyphen, Arabic letter
#: mark, Mongolian vowel separator, zero-width and directional marks, line and
#: paragraph separators, embeddings and overrides, invisible operators,
#: isolates, deprecated format controls, BOM, interlinear annotations, tags).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
#: What continuation lines of a multi-line body start with: never `[`, so no
#: line of a body reads like the start of another message.
CONTINUATION = "    "


def _visible(match: re.Match[str]) -> str:
    code = ord(match[0])
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def render(text: str, *, multiline: bool = False) -> str:
    """`text` from the network, safe to print on a terminal.

    Control and invisible format characters show as `\\x1b`, `\\u202e`...;
    newlines (multiline) start an indented continuation line, else show as `\\n`.
    """
    safe = _UNSAFE.sub(_visible, text)
    if multiline:
        return safe.replace("\n", "\n" + CONTINUATION)
    return safe.replace("\n", "\\n")


def error_line(error: ChatError, *, as_json: bool = False) -> str:
    """One line describing `error`, without a traceback."""
    if as_json:
        return json_line({"error": error.code, "detail": error.detail})
    detail = render(" ".join(error.detail.split()))  # keep it on one line
    code = render(error.code)
    return f"error: {code}: {detail}" if detail else f"error: {code}"


def format_time(ts_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000))


def format_message(message: Message) -> str:
    """`[HH:MM:SS] alice: text`, the time in local time; continuation lines indented."""
    return (f"[{format_time(message.ts)}] {render(message.sender)}: "
            f"{render(message.body, multiline=True)}")


def json_line(data: Any) -> str:
    return orjson.dumps(data).decode()
