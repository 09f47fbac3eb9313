"""Every Redis read and write of the app, as methods.

Multi-key writes are Lua scripts in server/scripts (loaded once, run by
EVALSHA); writes that must survive failover go through the group committer.
Redis failures surface as errors.Unavailable, never as ok. The read-only
audit reads of server.invariants are in store_audit.py (inherited here);
health probes and `check` ask Redis through redis_probe.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from server import keys
from server.data.audit import AuditReads
from server.data.dedupe import DedupeLayout
from server.data.logins import LoginFailures
from server.data.sessions import SessionWrites
from server.storage.redis_conn import unavailable_on_redis_error
from server.wire import errors, notifications, protocol, reply_size

if TYPE_CHECKING:
    from server.data.commit import GroupCommitter, OrderedGroup

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent / "data" / "scripts"
#: Defaults of the Store's bounds (the server passes its flags).
DEDUPE_WINDOW_MS = 3600 * 1000
MAX_PENDING_PER_SENDER = 1000
MAX_INBOX_BYTES = 16 * 1024 * 1024
MAX_STREAM_INT = 2**64 - 1
#: A fetch without a byte bound (store tests, tools).
UNBOUNDED_ROOM = 2**62


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str
    gen: str


@dataclass(frozen=True)
class SendResult:
    ts: int
    #: The message's seq; for a retry, the newest seq stored when it was
    #: recognised (the first send's or a later one): what a pusher re-reads up to.
    seq: str
    #: The seq stored before this one; None when this send was a retry.
    prev: str | None


def entry_to_message(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return protocol.message(
        msg_id=fields["msg_id"], sender=fields["from"], to=fields["to"],
        body=fields["body"], ts=int(fields["ts"]), seq=entry_id,
    )


def send_call(*, sender: str, to: str, msg_id: str, body: str, now_ms: int,
              dedupe: tuple[list[str], list[str | int]], max_inbox: int, max_pending: int,
              max_bytes: int) -> tuple[list[str], list[Any]]:
    """send.lua's KEYS and ARGV for one send (`dedupe`: store_dedupe.dedupe_call's).

    The settings go as one string, the same for every send of a batch."""
    call_keys = [keys.account(to), keys.inbox(to), keys.ledger(to), *dedupe[0]]
    settings = " ".join(str(x) for x in (len(call_keys), *dedupe[1], max_inbox, max_pending,
                                         max_bytes))
    return call_keys, [settings, sender, to, msg_id, body, now_ms]


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
    parsed = protocol.parse_seq(seq)
    # Twenty digits fit the shape but may exceed a stream id's 64-bit parts;
    # Redis would reject such an id with an error that reads as `unavailable`.
    if parsed is None or max(parsed) > MAX_STREAM_INT:
        raise errors.BadRequest("`seq` must be the seq of a message")
    ms, n = parsed
    if n < MAX_STREAM_INT:
        return f"{ms}-{n + 1}"
    return f"{ms + 1}-0" if ms < MAX_STREAM_INT else None


class Store(AuditReads, DedupeLayout, SessionWrites, LoginFailures):
    """The chat's data in Redis: accounts, tokens, inboxes, dedupe records.

    The read-only inspection reads of server.invariants come from AuditReads
    (server/data/audit.py); where dedupe records go, from DedupeLayout
    (server/data/dedupe.py).
    """

    def __init__(
        self, redis: Redis, committer: GroupCommitter, *, max_inbox: int,
        max_pending_per_sender: int = MAX_PENDING_PER_SENDER,
        max_inbox_bytes: int = MAX_INBOX_BYTES,
        dedupe_window_ms: int = DEDUPE_WINDOW_MS, dedupe_layout: str | None = None,
        acks: GroupCommitter | None = None,
    ) -> None:
        """`acks` batches acks (without a WAIT: they need none); `committer` if None.

        `dedupe_layout` (one of store_dedupe.LAYOUTS) skips asking Redis for it.
        """
        self.redis = redis
        self._committer = committer
        self._acks = acks or committer
        self._max_inbox = max_inbox
        self._max_pending = max_pending_per_sender
        self._max_bytes = max_inbox_bytes
        self.dedupe_window_ms = dedupe_window_ms
        self._layout = dedupe_layout
        self._scripts: dict[str, AsyncScript] = {
            path.stem: redis.register_script(path.read_text())
            for path in SCRIPTS.glob("*.lua")
        }

    @unavailable_on_redis_error
    async def load_scripts(self) -> None:
        """SCRIPT LOAD every script, so the first batches need no NOSCRIPT retry,
        and learn the dedupe layout Redis supports."""
        for script in self._scripts.values():
            await self.redis.script_load(script.script)
        await self.detect_layout()

    # Accounts -------------------------------------------------------------

    @unavailable_on_redis_error
    async def register(self, name: str, password_hash: str, *, gen: str, now_ms: int) -> bool:
        created = await self._committer.run(
            self._scripts["register"],
            [keys.account(name), keys.USERS],
            [name, password_hash, now_ms, gen],
        )
        return bool(created)

    @unavailable_on_redis_error
    async def account(self, name: str) -> Account | None:
        # HMGET, not HGETALL: the hash also holds a counter per sender.
        pw, gen = await self.redis.hmget(keys.account(name), ["pw", "gen"])
        if pw is None:
            return None
        return Account(name=name, password_hash=str(pw), gen=str(gen or ""))

    @unavailable_on_redis_error
    async def account_gens(self, names: Iterable[str]) -> dict[str, str | None]:
        """The generation id of each name (None: no account)."""
        names = list(names)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(keys.account(name), "gen")
        return dict(zip(names, await pipe.execute(), strict=True))

    @unavailable_on_redis_error
    async def delete_account(self, name: str, *, gen: str, now_ms: int | None = None) -> bool:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        deleted = await self._committer.run(
            self._scripts["delete_account"],
            [keys.account(name), keys.inbox(name), *self.dedupe_keys_to_delete(name, now),
             keys.tokens(name), keys.USERS, keys.revoked(name), keys.ledger(name)],
            [name, gen],
        )
        return bool(deleted)

    @unavailable_on_redis_error
    async def list_users(self, *, start_after: str | None, prefix: str, count: int) -> list[str]:
        """Up to `count` names after `start_after` (exclusive) that start with `prefix`."""
        low = f"({start_after}" if start_after and start_after >= prefix else f"[{prefix}"
        # Every name character sorts before "\x7f", so this bounds the prefix range.
        high = f"({prefix}\x7f" if prefix else "+"
        names: list[str] = await self.redis.zrangebylex(  # type: ignore[assignment]
            keys.USERS, low, high, 0, count
        )
        return names

    # Sessions (and the rest in store_sessions.py) ---------------------------

    @unavailable_on_redis_error
    async def revoke_token(self, name: str, token_hash: str) -> None:
        """Forget a token without a reason (tests and tools; ops use revoke_tokens)."""
        await self.redis.hdel(keys.tokens(name), token_hash)

    # Messages ---------------------------------------------------------------

    @unavailable_on_redis_error
    async def send(
        self, *, sender: str, to: str, body: str, msg_id: str, now_ms: int,
        group: OrderedGroup | None = None,
    ) -> SendResult:
        """Store a message durably (or find its first send within the dedupe window).

        `group`: the sender's pipelined sends, committed together in order."""
        call_keys, args = send_call(
            sender=sender, to=to, msg_id=msg_id, body=body, now_ms=now_ms,
            dedupe=await self.dedupe_call(to, now_ms), max_inbox=self._max_inbox,
            max_pending=self._max_pending, max_bytes=self._max_bytes)
        result = await self._committer.run(self._scripts["send"], call_keys, args, merge=True,
                                           group=group)
        status = result[0]
        if status == "ok":
            return SendResult(ts=now_ms, seq=result[1], prev=result[2])
        if status == "dup":
            return SendResult(ts=int(result[1]), seq=result[2], prev=None)
        if status == "no_such_user":
            raise errors.NoSuchUser(f"no user {to!r}")
        if status == "inbox_full":
            raise errors.TooLarge(f"{to}'s inbox is full ({self._max_inbox} undelivered messages)")
        if status == "sender_full":
            raise errors.TooLarge(f"{to} has {self._max_pending} undelivered messages from you; "
                                  "wait until they are read")
        if status == "bytes_full":
            raise errors.TooLarge(f"{to}'s inbox is full ({self._max_bytes} bytes undelivered)")
        if status == "error":
            log.error("send script failed for to=%s: %s", to, result[1])
            raise errors.Internal("storage script failed")
        raise errors.Internal(f"unexpected send result {status!r}")

    @unavailable_on_redis_error
    async def unread(self, name: str) -> int:
        count: int = await self.redis.xlen(keys.inbox(name))
        return count

    @unavailable_on_redis_error
    async def fetch(self, name: str, *, limit: int, room: int = UNBOUNDED_ROOM
                    ) -> tuple[list[dict[str, Any]], int]:
        """The oldest messages, at most `limit` and about `room` bytes of JSON
        (at least one when any is unread), and how many are left after them."""
        total, entries = await self._scripts["fetch"](
            keys=[keys.inbox(name)], args=[limit, room, reply_size.MESSAGE_OVERHEAD_BYTES])
        messages = [entry_to_message(eid, dict(zip(flat[::2], flat[1::2], strict=True)))
                    for eid, flat in entries]
        return messages, max(0, int(total) - len(messages))

    @unavailable_on_redis_error
    async def read_range(
        self, name: str, *, after: str, upto: str = "+", count: int = 1000
    ) -> list[dict[str, Any]]:
        """Messages with seq > after and <= upto, oldest first."""
        entries: list[tuple[str, dict[str, str]]] = await self.redis.xrange(  # type: ignore[assignment]
            keys.inbox(name), f"({after}", upto, count=count
        )
        return [entry_to_message(eid, fields) for eid, fields in entries]

    @unavailable_on_redis_error
    async def ack(self, name: str, seq: str) -> int:
        """Remove every message up to and including `seq`; how many went.

        Not waited for by replicas: a lost ack only means a redelivery,
        which clients dedupe. Acks arriving together go as one ack.lua call.
        """
        threshold = next_seq(seq)
        removed = await self._acks.run(self._scripts["ack"], *ack_call(name, threshold or ""),
                                       merge=True)
        if not isinstance(removed, int):
            log.error("ack script failed for user=%s: %s", name, removed)
            raise errors.Internal("storage script failed")
        return removed

    @unavailable_on_redis_error
    async def inbox_tails(self, names: Iterable[str]) -> dict[str, str]:
        """The newest seq of each inbox ('0-0' when empty)."""
        names = list(names)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.xrevrange(keys.inbox(name), "+", "-", count=1)
        tails = await pipe.execute()
        return {
            name: (tail[0][0] if tail else "0-0") for name, tail in zip(names, tails, strict=True)
        }

    # Notifications and liveness ----------------------------------------------

    @unavailable_on_redis_error
    async def publish(self, name: str, payload: bytes) -> None:
        await self.redis.publish(keys.channel(name), payload)

    @unavailable_on_redis_error
    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        """PUBLISH new-message notifications, one batch per user, in one round trip."""
        await self._scripts["publish"](args=publish_args(items))

    @unavailable_on_redis_error
    async def publish_raw(self, channel: str, payload: bytes) -> None:
        await self.redis.publish(channel, payload)

    @unavailable_on_redis_error
    async def ping(self) -> None:
        await self.redis.ping()
