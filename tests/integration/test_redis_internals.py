"""The redis-py internals server/storage/pubsub_reader.py leans on, against a real Valkey.

The reader takes every complete reply hiredis already holds after one socket
read (`conn._parser._reader.gets()` until `NOT_ENOUGH_DATA`) and sets a RESP3
push handler on the parser. If a redis-py release moves any of that, these
fail loudly instead of the listener silently reading one reply per wakeup.
"""

from __future__ import annotations

import inspect

from redis.asyncio import Redis

from server.storage import pubsub_reader
from server.storage.pubsub_reader import PubSubReader


def test_hiredis_not_enough_data_marker_is_importable() -> None:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA

    assert vars(pubsub_reader)["NOT_ENOUGH_DATA"] is NOT_ENOUGH_DATA is not None


async def test_a_subscribed_connection_has_the_hiredis_reader_the_reader_uses(
        redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    reader = PubSubReader(client)
    try:
        await reader.pubsub.subscribe("internals-probe")
        conn = reader.pubsub.connection
        assert conn is not None
        assert hasattr(conn._parser, "set_pubsub_push_handler")
        assert callable(conn._parser._reader.gets)
        params = inspect.signature(conn.read_response).parameters
        assert {"timeout", "disconnect_on_error", "push_request"} <= set(params)
    finally:
        await reader.pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_one_read_returns_every_message_already_buffered(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    reader = PubSubReader(client)
    try:
        await reader.pubsub.subscribe("internals-burst")
        assert await reader.read(timeout=1.0) == []  # the subscribe confirmation
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.publish("internals-burst", str(i))
        await pipe.execute()
        got: list[tuple[str, str]] = []
        reads = 0
        while len(got) < 50 and reads < 50:
            got += await reader.read(timeout=1.0)
            reads += 1
        assert [data for _, data in got] == [str(i) for i in range(50)]
        assert reads <= 10  # many messages per socket read, not one per wakeup
    finally:
        await reader.pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
