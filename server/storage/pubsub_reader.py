"""Read a redis-py pub/sub connection a socket read at a time, not a message at a time.

The one module that uses redis-py internals on the hot path (the hiredis
reader behind a connection); tests/integration/test_redis_internals.py fails
loudly if a redis-py release moves them.

`PubSub.get_message(timeout=...)` costs, per notification, a timeout
context, a retry wrapper, observability hooks and a dict. Here one wakeup
waits (with a timeout) for the first reply, then takes every reply the
hiredis parser already holds complete from that socket read without
awaiting anything. The connection stays redis-py's own (Sentinel lookup,
AUTH, TLS, health-check PINGs): only the reading is ours.

Errors are not retried here: a lost connection surfaces as a RedisError,
so the listener reconnects and re-reads what it may have missed, instead
of redis-py reconnecting behind its back.

Safe with SUBSCRIBE/UNSUBSCRIBE sent from other coroutines while a read
waits: they only write to the connection; their confirmations arrive here
and go through `PubSub.handle_message`, which keeps redis-py's record of
subscribed channels right. Replies taken from the parser's buffer skip
redis-py's RESP3 push routing, which only matters for client-side caching
and Redis Enterprise maintenance events, neither used on this connection.

`CHAT_BENCH_PUBLIC_PUBSUB_READ=1` (read here only, for `python -m
bench.privpaths`) makes `read` use the public `PubSub.get_message()`
instead: the first message with the timeout, then every one already
there; it exists to measure what the internals save (docs/benchmarks.md,
"Private fast paths"), not to run a server with.
"""

from __future__ import annotations

import os
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError

try:  # What the hiredis reader answers when no complete reply is buffered.
    from redis._parsers.hiredis import NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - a redis-py without it: one reply per read
    NOT_ENOUGH_DATA = None

#: Measurement only: `PubSub.get_message()` instead of reading the parser.
PUBLIC_READ = os.environ.get("CHAT_BENCH_PUBLIC_PUBSUB_READ") == "1"
#: Reply kinds that carry a published message: PUBLISH's and SPUBLISH's (sharded).
MESSAGES = ("message", "smessage")

#: (channel, data) of one published message.
Notification = tuple[str, str]


async def _as_is(reply: Any) -> Any:
    """RESP3 push handler: the reply itself. redis-py's default formats a
    debug line (str of the whole reply) for every message, logged or not."""
    return reply


class PubSubReader:
    """A PubSub of `redis` (which must decode responses) and the reading of it."""

    def __init__(self, redis: Redis) -> None:
        self.pubsub = redis.pubsub(ignore_subscribe_messages=True)
        if not self.pubsub.encoder.decode_responses:
            raise ValueError("PubSubReader needs a client with decode_responses=True")
        self._handler_set = False

    async def read(self, timeout: float) -> list[Notification]:
        """The messages of the next socket read, waiting up to `timeout` s for one.

        [] when none came in time (or only subscribe confirmations or a
        health-check PONG did). Raises RedisError when the connection is
        lost or a reply is an error (e.g. a SUBSCRIBE refused).
        """
        pubsub = self.pubsub
        conn = pubsub.connection
        if conn is None or not conn.is_connected:
            raise ConnectionError("pub/sub connection closed")
        if PUBLIC_READ:
            return await self._read_public(timeout)
        if not self._handler_set:
            self._handler_set = True
            parser = conn._parser  # not every redis-py version's parser takes a handler
            if hasattr(parser, "set_pubsub_push_handler"):
                parser.set_pubsub_push_handler(_as_is)
        await pubsub.check_health()  # a PING after health_check_interval of silence
        first = await conn.read_response(
            timeout=timeout, disconnect_on_error=False, push_request=True
        )
        if first is None:
            return []
        replies = [first]
        reader = getattr(conn._parser, "_reader", None)  # hiredis: complete replies, no I/O
        if reader is not None and NOT_ENOUGH_DATA is not None:
            gets = reader.gets
            while (reply := gets()) is not NOT_ENOUGH_DATA:
                if isinstance(reply, Exception):  # an error reply: raised, as read_response does
                    raise reply
                replies.append(reply)
        out: list[Notification] = []
        for reply in replies:
            if not isinstance(reply, list):
                continue  # RESP3 answers a health-check PING with a plain string
            if len(reply) == 3 and reply[0] in MESSAGES:
                out.append((reply[1], reply[2]))
            else:  # subscribe/unsubscribe confirmations, RESP2 PONG: redis-py's bookkeeping
                await pubsub.handle_message(reply)
        return out

    async def _read_public(self, timeout: float) -> list[Notification]:
        """The public API's way: the first message waiting up to `timeout`,
        then every one that needs no wait (`timeout=0`)."""
        out: list[Notification] = []
        message = await self.pubsub.get_message(timeout=timeout)
        while message is not None:
            if message["type"] in MESSAGES:
                out.append((message["channel"], message["data"]))
            message = await self.pubsub.get_message(timeout=0)
        return out
