"""The door to the chat's data in Redis: accounts and messages here, the rest in parts.

Multi-key writes are Lua scripts in data/scripts (loaded once, run by
EVALSHA); writes that must survive failover go through the group committer.
Redis failures surface as errors.Unavailable, never as ok. A Store owns four
parts, each constructed with only what it needs: `sessions` (tokens),
`logins` (failed-login counters), `dedupe` (where a send's dedupe record
goes) and `audit` (the read-only reads of server.invariants). The pure
KEYS/ARGV building and reply reading of the message scripts is in
data/messages.py; health probes and `check` ask Redis through storage/.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from redis.commands.core import AsyncScript

from server import keys
from server.data.audit import Audit
from server.data.dedupe import Dedupe, Members, NodeClient
from server.data.directory import Directory
from server.data.logins import Logins
from server.data.messages import (
    SendBounds,
    SendResult,
    ack_call,
    entry_to_message,
    next_seq,
    publish_args,
    script_failure,
    send_call,
    send_result,
)
from server.data.sessions import Sessions
from server.storage.failures import unavailable_on_redis_error
from server.storage.redis_conn import Client
from server.wire import reply_size

if TYPE_CHECKING:
    from server.data.commit import GroupCommitter, OrderedGroup

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent / "data" / "scripts"
#: Defaults of the Store's bounds (the server passes its flags).
DEDUPE_WINDOW_MS = 3600 * 1000
MAX_PENDING_PER_SENDER = 1000
MAX_INBOX_BYTES = 16 * 1024 * 1024
#: A fetch without a byte bound (store tests, tools).
UNBOUNDED_ROOM = 2**62


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str
    gen: str


class Store:
    """The chat's data in Redis: accounts and inboxes, and the parts that own the rest."""

    def __init__(
        self, redis: Client, committer: GroupCommitter, *, max_inbox: int,
        max_pending_per_sender: int = MAX_PENDING_PER_SENDER,
        max_inbox_bytes: int = MAX_INBOX_BYTES,
        dedupe_window_ms: int = DEDUPE_WINDOW_MS, dedupe_layout: str | None = None,
        acks: GroupCommitter | None = None, cluster: bool = False,
        set_members: Members | None = None, node: NodeClient | None = None,
    ) -> None:
        """`acks` batches acks (without a WAIT: they need none); `committer` if None.

        `cluster`: `redis` is a Redis Cluster's client. The name directory is
        then written in steps of its own (`directory`) and notifications go
        by sharded pub/sub (SPUBLISH on the user's slot).

        `dedupe_layout` (one of storage.capabilities.LAYOUTS) skips asking Redis for it;
        `set_members` and `node` name the set's nodes, whose weakest decides it (data/dedupe.py).
        """
        self._redis = redis
        self._committer = committer
        self._acks = acks or committer
        self._bounds = SendBounds(max_inbox=max_inbox, max_pending=max_pending_per_sender,
                                  max_bytes=max_inbox_bytes)
        self._scripts: dict[str, AsyncScript] = {
            path.stem: redis.register_script(path.read_text())
            for path in SCRIPTS.glob("*.lua")
        }
        # Owned for the Store's life; callers use them, never rebind them.
        self.sessions: Final = Sessions(redis, committer, self._scripts["sessions"])
        self.logins: Final = Logins(redis, self._scripts["login_failed"])
        self.dedupe: Final = Dedupe(redis, window_ms=dedupe_window_ms, layout=dedupe_layout,
                                    members=set_members, node=node)
        self.audit: Final = Audit(redis)
        self.directory: Final = Directory(redis, committer,
                                          directory=self._scripts["directory"],
                                          listed=self._scripts["listed"])
        self._cluster = cluster
        #: PUBLISH is broadcast to every node of a Cluster; SPUBLISH goes to the slot's shard.
        self._publish = "SPUBLISH" if cluster else "PUBLISH"

    @unavailable_on_redis_error
    async def load_scripts(self) -> None:
        """SCRIPT LOAD every script, so the first batches need no NOSCRIPT retry,
        and learn the dedupe layout Redis supports."""
        for script in self._scripts.values():
            await self._redis.script_load(script.script)
        await self.dedupe.detect_layout()

    # Accounts -------------------------------------------------------------

    @unavailable_on_redis_error
    async def register(self, name: str, password_hash: str, *, gen: str, now_ms: int) -> bool:
        created = await self._committer.run(
            self._scripts["register"],
            [keys.account(name), self.directory.pending_key(name)] if self._cluster
            else [keys.account(name), keys.USERS],
            [name, password_hash, now_ms, gen, *(["pending"] if self._cluster else [])],
        )
        if self._cluster:
            if created:
                await self.directory.list_name(name, gen)
            else:  # taken: by an account whose listing a crash may have left pending
                await self.directory.complete(name)
        return bool(created)

    @unavailable_on_redis_error
    async def account(self, name: str) -> Account | None:
        # HMGET, not HGETALL: the hash also holds a counter per sender.
        pw, gen = await self._redis.hmget(keys.account(name), ["pw", "gen"])
        if pw is None:
            return None
        return Account(name=name, password_hash=str(pw), gen=str(gen or ""))

    @unavailable_on_redis_error
    async def account_gens(self, names: Iterable[str]) -> dict[str, str | None]:
        """The generation id of each name (None: no account)."""
        names = list(names)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(keys.account(name), "gen")
        return dict(zip(names, await pipe.execute(), strict=True))

    @unavailable_on_redis_error
    async def delete_account(self, name: str, *, gen: str, now_ms: int | None = None) -> bool:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        dedupe_keys = self.dedupe.keys_to_delete(name, now)
        deleted = await self._committer.run(
            self._scripts["delete_account"],
            [keys.account(name), keys.inbox(name), *dedupe_keys[:5],
             keys.tokens(name), keys.revoked(name), keys.ledger(name), *dedupe_keys[5:],
             self.directory.pending_key(name) if self._cluster else keys.USERS],
            [name, gen, "pending" if self._cluster else "1"],
        )
        if deleted and self._cluster:
            await self.directory.unlist_name(name)
        return bool(deleted)

    @unavailable_on_redis_error
    async def list_users(self, *, start_after: str | None, prefix: str, count: int) -> list[str]:
        """Up to `count` names after `start_after` (exclusive) that start with `prefix`."""
        low = f"({start_after}" if start_after and start_after >= prefix else f"[{prefix}"
        # Every name character sorts before "\x7f", so this bounds the prefix range.
        high = f"({prefix}\x7f" if prefix else "+"
        names: list[str] = await self._redis.zrangebylex(  # type: ignore[assignment]
            keys.USERS, low, high, 0, count
        )
        return names

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
            dedupe=await self.dedupe.for_send(to, now_ms), max_inbox=self._bounds.max_inbox,
            max_pending=self._bounds.max_pending, max_bytes=self._bounds.max_bytes)
        result = await self._committer.run(self._scripts["send"], call_keys, args, merge=True,
                                           group=group)
        if isinstance(result, list) and result and result[0] == "layout":
            self.dedupe.refused(result[1])  # nothing was written; send_result says retry
        return send_result(result, to=to, now_ms=now_ms, bounds=self._bounds)

    @unavailable_on_redis_error
    async def unread(self, name: str) -> int:
        count: int = await self._redis.xlen(keys.inbox(name))
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
        entries: list[tuple[str, dict[str, str]]] = await self._redis.xrange(  # type: ignore[assignment]
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
            raise script_failure(removed[1] if isinstance(removed, list) else removed)
        return removed

    @unavailable_on_redis_error
    async def inbox_tails(self, names: Iterable[str]) -> dict[str, str]:
        """The newest seq of each inbox ('0-0' when empty)."""
        names = list(names)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.xrevrange(keys.inbox(name), "+", "-", count=1)
        tails = await pipe.execute()
        return {
            name: (tail[0][0] if tail else "0-0") for name, tail in zip(names, tails, strict=True)
        }

    # Notifications and liveness ----------------------------------------------

    @unavailable_on_redis_error
    async def publish(self, name: str, payload: bytes) -> None:
        await self.publish_raw(keys.channel(name), payload)

    @unavailable_on_redis_error
    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        """PUBLISH new-message notifications, one batch per user, in one round trip
        (on a Cluster one pipeline, which redis-py sends to each slot's shard)."""
        args = publish_args(items)
        if not self._cluster:
            await self._scripts["publish"](args=args)
            return
        pipe = self._redis.pipeline(transaction=False)
        for channel, payload in zip(args[::2], args[1::2], strict=True):
            pipe.execute_command(self._publish, channel, payload)
        await pipe.execute()

    @unavailable_on_redis_error
    async def publish_raw(self, channel: str, payload: bytes) -> None:
        await self._redis.execute_command(self._publish, channel, payload)

    @unavailable_on_redis_error
    async def ping(self) -> None:
        await self._redis.ping()
