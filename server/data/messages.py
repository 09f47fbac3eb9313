"""The pure half of the message scripts: KEYS/ARGV built, replies read.

What send.lua, ack.lua and publish.lua take and answer, without I/O, so
store.py holds only the calls and bench/ can build the same arguments.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from server import keys
from server.wire import arguments, errors, notifications, protocol

log = logging.getLogger(__name__)

MAX_STREAM_INT = 2**64 - 1


@dataclass(frozen=True)
class SendResult:
    ts: int
    #: The message's seq; for a retry, the newest seq stored when it was
    #: recognised (the first send's or a later one): what a pusher re-reads up to.
    seq: str
    #: The seq stored before this one; None when this send was a retry.
    prev: str | None


@dataclass(frozen=True)
class SendBounds:
    """The inbox bounds send.lua enforces (--max-inbox, --max-pending-per-sender,
    --max-inbox-bytes)."""

    max_inbox: int
    max_pending: int
    max_bytes: int


def entry_to_message(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return protocol.message(
        msg_id=fields["msg_id"], sender=fields["from"], to=fields["to"],
        body=fields["body"], ts=int(fields["ts"]), seq=entry_id,
    )


def send_call(*, sender: str, to: str, msg_id: str, body: str, now_ms: int,
              dedupe: tuple[list[str], list[str | int]], max_inbox: int, max_pending: int,
              max_bytes: int) -> tuple[list[str], list[Any]]:
    """send.lua's KEYS and ARGV for one send (`dedupe`: data.dedupe.dedupe_call's).

    The settings go as one string, the same for every send of a batch."""
    call_keys = [keys.account(to), keys.inbox(to), keys.ledger(to), *dedupe[0]]
    settings = _settings((len(call_keys), *dedupe[1], max_inbox, max_pending, max_bytes))
    return call_keys, [settings, sender, to, msg_id, body, now_ms]


@functools.lru_cache(maxsize=64)
def _settings(values: tuple[str | int, ...]) -> str:
    """send.lua's settings string; the same for nearly every send, so built once."""
    return " ".join(str(x) for x in values)


def send_result(result: list[Any], *, to: str, now_ms: int, bounds: SendBounds) -> SendResult:
    """send.lua's reply to one send: the stored message, or the error it answers."""
    status = result[0]
    if status == "ok":
        return SendResult(ts=now_ms, seq=result[1], prev=result[2])
    if status == "dup":
        return SendResult(ts=int(result[1]), seq=result[2], prev=None)
    if status == "no_such_user":
        raise errors.NoSuchUser(f"no user {to!r}")
    if status == "inbox_full":
        raise errors.TooLarge(f"{to}'s inbox is full ({bounds.max_inbox} undelivered messages)")
    if status == "sender_full":
        raise errors.TooLarge(f"{to} has {bounds.max_pending} undelivered messages from you; "
                              "wait until they are read")
    if status == "bytes_full":
        raise errors.TooLarge(f"{to}'s inbox is full ({bounds.max_bytes} bytes undelivered)")
    if status == "layout":
        raise errors.Unavailable("the Redis primary cannot write this dedupe layout; retry")
    if status == "error":
        log.error("send script failed for to=%s: %s", to, result[1])
        raise script_failure(result[1])
    raise errors.Internal(f"unexpected send result {status!r}")


def script_failure(message: object) -> errors.ChatError:
    """What a script call's failure answers. A node demoted under the write
    (READONLY: a failover moved the primary) is `unavailable`, which the
    client retries on the new primary; anything else is `internal`."""
    if str(message).startswith("READONLY"):
        return errors.Unavailable("the Redis primary changed; retry")
    return errors.Internal("storage script failed")


def ack_call(name: str, keep: str) -> tuple[list[str], list[Any]]:
    """ack.lua's KEYS and ARGV for one ack (`keep`: the smallest seq kept, '' for none)."""
    return [keys.inbox(name), keys.account(name), keys.ledger(name)], [keep]


def publish_args(items: list[tuple[str, bytes]]) -> list[str | bytes]:
    """publish.lua's ARGV for new-message notifications (user, payload).

    One PUBLISH per user: a user's notifications go as one batch payload, in
    order (notifications.batch); the order between users does not matter.
    """
    by_user: dict[str, list[bytes]] = {}
    for name, payload in items:
        by_user.setdefault(name, []).append(payload)
    args: list[str | bytes] = []
    for name, notes in by_user.items():
        args += (keys.channel(name), notifications.batch(notes))
    return args


def next_seq(seq: str) -> str | None:
    """The smallest stream id after `seq`, or None if there is none."""
    parsed = arguments.parse_seq(seq)
    # Twenty digits fit the shape but may exceed a stream id's 64-bit parts;
    # Redis would reject such an id with an error that reads as `unavailable`.
    if parsed is None or max(parsed) > MAX_STREAM_INT:
        raise errors.BadRequest("`seq` must be the seq of a message")
    ms, n = parsed
    if n < MAX_STREAM_INT:
        return f"{ms}-{n + 1}"
    return f"{ms + 1}-0" if ms < MAX_STREAM_INT else None
