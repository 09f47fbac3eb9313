"""Redis failures answer `unavailable`, whatever shape they reach us in."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from redis.exceptions import ConnectionError

from server.storage.failures import closed_transport, unavailable_on_redis_error
from server.wire import errors


async def _write_after_close() -> Exception:
    """What uvloop raises for a write on a connection that is closed."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.close()
        await asyncio.sleep(0.05)
        try:
            writer.writelines([b"PING\r\n"])
        except Exception as exc:  # what it raises is the question
            return exc
        raise AssertionError("uvloop no longer raises on a write to a closed transport")
    finally:
        server.close()
        await server.wait_closed()


def test_uvloop_still_raises_runtime_error_for_a_write_on_a_closed_transport() -> None:
    # The adapter's guard: if uvloop changes this, closed_transport must follow.
    exc = uvloop.run(_write_after_close())
    assert closed_transport(exc), repr(exc)


async def _answer_to(failure: Exception) -> None:
    """A store call that meets `failure`, as the store's calls are wrapped."""

    @unavailable_on_redis_error
    async def call() -> None:
        raise failure

    await call()


def test_a_write_on_a_closed_transport_answers_unavailable() -> None:
    failure = uvloop.run(_write_after_close())
    with pytest.raises(errors.Unavailable):
        asyncio.run(_answer_to(failure))


async def test_a_redis_connection_error_answers_unavailable() -> None:
    with pytest.raises(errors.Unavailable):
        await _answer_to(ConnectionError("gone"))


async def test_another_runtime_error_is_not_taken_for_a_storage_failure() -> None:
    with pytest.raises(RuntimeError, match="a bug of ours"):
        await _answer_to(RuntimeError("a bug of ours"))
