"""Pure: how many messages or names fit a reply of --max-reply-bytes (no I/O).

A reply is one frame the server must hold until the client takes it, so
its size is bounded in bytes, not only in items: 1,000 bodies of control
characters, each escaped to six bytes in JSON, would be a 24 MiB frame.
Sizes are reckoned from an upper bound first (every character escaped to
six bytes) and encoded exactly only near the bound, so a fetch of
ordinary messages costs no second encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

#: Bytes of a reply besides its items and its id:
#: {"id":,"ok":true,"messages":[],"unread":12345678901234567890} and spare.
ENVELOPE_BYTES = 96
#: Most JSON bytes one character of a string can take (`\u0000`).
WORST_BYTES_PER_CHAR = 6
#: A message object's keys, quotes, commas and its ts, at most.
MESSAGE_OVERHEAD_BYTES = 96
_MESSAGE_STRINGS = ("msg_id", "from", "to", "body", "seq")


def room(request_id: str | int | None, max_reply_bytes: int) -> int:
    """Bytes left for the items of a reply that echoes `request_id` (at most)."""
    if isinstance(request_id, str):
        id_bytes = WORST_BYTES_PER_CHAR * len(request_id) + 2
    else:
        id_bytes = len(str(request_id))  # an integer of any size, or null
    return max_reply_bytes - id_bytes - ENVELOPE_BYTES


def messages_within(messages: Sequence[dict[str, Any]], room: int) -> int:
    """How many of `messages`, from the first, fit in `room` bytes; at least one."""
    used = 0
    for count, message in enumerate(messages):
        size = MESSAGE_OVERHEAD_BYTES + WORST_BYTES_PER_CHAR * sum(
            len(message[key]) for key in _MESSAGE_STRINGS)
        if used + size > room:
            size = len(orjson.dumps(message)) + 1  # exact: near the bound only
            if used + size > room:
                return max(count, 1)
        used += size
    return len(messages)


def name_bytes(name: str) -> int:
    """JSON bytes of one listed name ("name", ); names are plain ASCII."""
    return len(name) + 3
