"""SIGTERM with real processes: finish the send in flight, `shutdown`, 1001, exit 0.

A send is held in flight by pausing writes on Redis (CLIENT PAUSE WRITE
blocks scripts), so the signal lands while the server is inside it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import pytest
import redis
from websockets.exceptions import InvalidStatus

from tests.conftest import StartServer
from tests.scrape import health, wait_health
from tests.wsclient import Peer


def _pause_writes(redis_url: str, ms: int) -> None:
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_pause(ms, all=False)
    finally:
        admin.close()


def _unpause(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_unpause()
    finally:
        admin.close()


async def test_sigterm_answers_the_send_in_flight_then_shutdown_event_then_1001_and_exit_0(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server("--retry-after-ms", "1500", redis_url=redis_url)
    await wait_health(server.http_url, lambda s, b: s == 200)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    await alice.ok("register", username="bob", password="correct horse")
    idle = await Peer.connect(server.url)  # connected, never logged in
    _pause_writes(redis_url, 1500)
    try:
        await alice.send_raw(json.dumps(
            {"op": "send", "id": 7, "to": "bob", "body": "in flight", "msg_id": "m-7"}))
        await asyncio.sleep(0.3)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # Draining: still answering HTTP, refusing new WebSocket connections.
        status, body = await health(server.http_url)
        assert status == 503 and body["status"] == "draining"
        status, ready = await health(server.http_url, "/readyz")
        assert status == 503 and ready["ready"] is False
        with pytest.raises(InvalidStatus) as refused:
            await Peer.connect(server.url)
        assert refused.value.response.status_code == 503
    finally:
        _unpause(redis_url)
    frames = [json.loads(await asyncio.wait_for(alice.ws.recv(), 10)) for _ in range(2)]
    assert frames[0]["id"] == 7 and frames[0]["ok"] is True, frames
    assert frames[1] == {"event": "shutdown", "retry_after_ms": 1500}
    assert await alice.closed_code() == 1001
    assert (await idle.event())["event"] == "shutdown"
    assert await idle.closed_code() == 1001
    assert server.proc is not None
    assert await asyncio.to_thread(server.proc.wait, 15) == 0
    assert "stopped" in server.log()


async def test_second_sigterm_exits_at_once_without_waiting_for_the_drain(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server(redis_url=redis_url)
    await wait_health(server.http_url, lambda s, b: s == 200)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    assert server.proc is not None
    _pause_writes(redis_url, 8000)
    try:
        await alice.send_raw(json.dumps(
            {"op": "send", "id": 1, "to": "alice", "body": "stuck", "msg_id": "m-1"}))
        await asyncio.sleep(0.3)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert server.proc.poll() is None, "first SIGTERM must wait for the send in flight"
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(server.proc.wait, 3)
        except subprocess.TimeoutExpired:
            pytest.fail("second SIGTERM did not exit at once")
        assert time.monotonic() - started < 2
        assert code != 0
        assert "second SIGTERM" in server.log()
    finally:
        _unpause(redis_url)
