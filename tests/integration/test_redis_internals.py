"""The redis-py internals server/storage/pubsub_reader.py leans on, against a real Valkey.

The reader takes every complete reply hiredis already holds after one socket
read (`conn._parser._reader.gets()` until `NOT_ENOUGH_DATA`) and sets a RESP3
push handler on the parser. If a redis-py release moves any of that, these
fail loudly instead of the listener silently reading one reply per wakeup.
The public-API variant `python -m bench.privpaths` measures against it
(CHAT_BENCH_PUBLIC_PUBSUB_READ) must read the same messages.
"""

from __future__ import annotations

import inspect

import pytest
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


async def read_a_burst(redis_url: str, channel: str) -> tuple[list[tuple[str, str]], int]:
    """Subscribe, publish 50 messages in one pipeline, read them: (messages, reads)."""
    client = Redis.from_url(redis_url, decode_responses=True)
    reader = PubSubReader(client)
    try:
        await reader.pubsub.subscribe(channel)
        assert await reader.read(timeout=1.0) == []  # the subscribe confirmation
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.publish(channel, str(i))
        await pipe.execute()
        got: list[tuple[str, str]] = []
        reads = 0
        while len(got) < 50 and reads < 50:
            got += await reader.read(timeout=1.0)
            reads += 1
        return got, reads
    finally:
        await reader.pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_one_read_returns_every_message_already_buffered(redis_url: str) -> None:
    got, reads = await read_a_burst(redis_url, "internals-burst")
    assert [data for _, data in got] == [str(i) for i in range(50)]
    assert reads <= 10  # many messages per socket read, not one per wakeup


async def test_the_public_get_message_variant_of_bench_privpaths_reads_the_same_messages(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub_reader, "PUBLIC_READ", True)
    got, _ = await read_a_burst(redis_url, "internals-public")
    assert got == [("internals-public", str(i)) for i in range(50)]
