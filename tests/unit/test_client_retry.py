"""ChatClient retry paths a real server rarely produces, against a scripted in-process server."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from client import ChatClient, NoSuchUser, Unconfirmed
from client.messaging import RESEND_MARGIN_S
from client.present import EXIT_UNAVAILABLE

Script = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any] | None]
StartFake = Callable[[Script], Awaitable["FakeServer"]]


class FakeServer:
    """Answers each request with `script(request, seen_requests)`; records every request."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        async for raw in ws:
            request = orjson.loads(raw)
            self.requests.append(request)
            reply = self.script(request, self.requests)
            if reply is not None:
                await ws.send(orjson.dumps({"id": request["id"], **reply}).decode())


@pytest.fixture
async def fake() -> AsyncIterator[StartFake]:
    servers: list[Any] = []

    async def start(script: Script) -> FakeServer:
        fake = FakeServer(script)
        server = await serve(fake.handler, "127.0.0.1", 0)
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ws"
        servers.append(server)
        return fake

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def client_for(*urls: str) -> ChatClient:
    return ChatClient(urls=list(urls), backoff_base=0.01, backoff_cap=0.05, retry_deadline=5)


async def test_unavailable_send_is_retried_with_the_same_msg_id(fake: StartFake) -> None:
    def script(request: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
        sends = [r for r in seen if r["op"] == "send"]
        if len(sends) < 3:
            return {"ok": False, "error": "unavailable", "detail": "no primary"}
        return {"ok": True, "msg_id": request["msg_id"], "ts": 1234}

    server = await fake(script)
    async with client_for(server.url) as client:
        msg_id, ts = await client.send("bob", "hi")
    sends = [r for r in server.requests if r["op"] == "send"]
    assert len(sends) == 3
    assert {r["msg_id"] for r in sends} == {msg_id}
    assert len(msg_id) == 32 and ts == 1234
    assert len({r["id"] for r in server.requests}) == len(server.requests)  # ids never reused


async def test_rate_limited_is_retried_but_fatal_errors_are_raised_at_once(fake: StartFake) -> None:
    def script(request: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
        if len(seen) == 1:
            return {"ok": False, "error": "rate_limited", "detail": "slow down"}
        return {"ok": False, "error": "no_such_user", "detail": "bob"}

    server = await fake(script)
    async with client_for(server.url) as client:
        with pytest.raises(NoSuchUser):
            await client.send("bob", "hi")
    assert len(server.requests) == 2


async def test_lost_reply_is_resent_on_the_next_instance(fake: StartFake) -> None:
    silent = await fake(lambda request, seen: None)  # never answers: the request times out
    good = await fake(lambda request, seen: {"ok": True, "msg_id": request["msg_id"], "ts": 7})
    client = ChatClient(urls=[silent.url, good.url], backoff_base=0.01, backoff_cap=0.05,
                        request_timeout=0.3, retry_deadline=5)
    async with client:
        msg_id, _ = await client.send("bob", "hi")
        assert client.url == good.url
    assert [r["msg_id"] for r in silent.requests] == [msg_id]
    assert [r["msg_id"] for r in good.requests] == [msg_id]


async def test_a_send_is_never_resent_past_the_dedupe_window_and_ends_unconfirmed(
        fake: StartFake) -> None:
    def script(request: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
        if request["op"] == "login":
            return {"ok": True, "username": "alice", "token": "alice:t", "unread": 0,
                    "dedupe_window_ms": 2000}
        request["at"] = time.monotonic()
        return {"ok": False, "error": "unavailable", "detail": "replicas slow"}

    server = await fake(script)
    client = ChatClient(urls=[server.url], backoff_base=0.05, backoff_cap=0.1,
                        retry_deadline=30)
    async with client:
        await client.login("alice", "secret pw")
        assert client.dedupe_window_s == 2.0
        began = time.monotonic()
        with pytest.raises(Unconfirmed, match="dedupe window"):
            await client.send("bob", "hi")
        assert time.monotonic() - began < 2.0
    sends = [r for r in server.requests if r["op"] == "send"]
    assert len(sends) > 1 and len({r["msg_id"] for r in sends}) == 1
    assert max(r["at"] for r in sends) - began < 2.0 - RESEND_MARGIN_S + 0.2


async def test_a_server_that_announces_no_window_gets_the_protocol_default(
        fake: StartFake) -> None:
    server = await fake(lambda request, seen: {"ok": True, "username": "alice",
                                               "token": "alice:t", "unread": 0})
    async with client_for(server.url) as client:
        await client.login("alice", "secret pw")
        assert client.dedupe_window_s == 3600.0


async def test_the_cli_reports_a_send_unconfirmed_past_the_window_in_one_line(
        fake: StartFake) -> None:
    def script(request: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
        if request["op"] == "login":
            return {"ok": True, "username": "alice", "token": "alice:t", "unread": 0,
                    "dedupe_window_ms": 2000}
        if request["op"] == "resume":  # the send's deadline may cut a reply wait: reconnect
            return {"ok": True, "username": "alice", "unread": 0, "dedupe_window_ms": 2000}
        if request["op"] == "logout":
            return {"ok": True}
        return {"ok": False, "error": "unavailable", "detail": "replicas slow"}

    server = await fake(script)
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client", "--url", server.url, "--timeout", "30",
        "send", "alice", "bob", "hi", env={**os.environ, "CHAT_PASSWORD": "secret pw"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(cli.communicate(), 20)
    lines = err.decode().strip().splitlines()
    assert cli.returncode == EXIT_UNAVAILABLE, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: unconfirmed:"), lines
    assert "dedupe window" in lines[0]
