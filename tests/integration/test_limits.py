"""Every limit on what a client controls, against a real server.

Frame size, body size, names and bad arguments are in test_errors.py; here
are the limits that need load to reach: request rate, connections per
address, inbox length and a client that never reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.wsclient import Peer


async def test_requests_over_the_rate_are_rate_limited_in_order_and_refill(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--requests-per-second", "5", "--request-burst", "5",
                          redis_url=redis_url)
    peer = await Peer.connect(server.url)
    for i in range(20):
        await peer.send_raw(json.dumps({"op": "fetch", "id": i}))
    replies = [await peer.recv() for _ in range(20)]
    assert [r["id"] for r in replies] == list(range(20))
    codes = [r["error"] for r in replies]
    assert codes[:5] == ["unauthenticated"] * 5
    assert codes.count("rate_limited") >= 14, codes
    other = await Peer.connect(server.url)  # the bucket is per connection
    assert (await other.request("fetch"))["error"] == "unauthenticated"
    await asyncio.sleep(0.5)
    assert (await peer.request("fetch"))["error"] == "unauthenticated"


async def test_connections_over_the_per_address_cap_get_http_429(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-connections-per-ip", "3", redis_url=redis_url)
    peers = [await Peer.connect(server.url) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await Peer.connect(server.url)
    assert refused.value.response.status_code == 429
    await peers.pop().close()
    deadline = time.monotonic() + 10
    while True:  # the server counts the close when its handler finishes
        try:
            peers.append(await Peer.connect(server.url))
            break
        except InvalidStatus:
            assert time.monotonic() < deadline, "a freed slot was never reusable"
            await asyncio.sleep(0.05)


async def test_full_inbox_answers_the_sender_too_large_and_keeps_what_is_stored(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-inbox", "3", redis_url=redis_url)
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await bob.ok("register", username="bob", password="correct horse")
    for i in range(3):
        await alice.send_message("bob", f"m{i}")
    reply = await alice.request("send", to="bob", body="one too many", msg_id="m3")
    assert reply["error"] == "too_large" and "inbox is full" in reply["detail"], reply
    await bob.ok("login", username="bob", password="correct horse")
    fetched = (await bob.ok("fetch"))["messages"]
    assert [m["body"] for m in fetched] == ["m0", "m1", "m2"]
    await bob.ok("ack", seq=fetched[0]["seq"])
    await alice.send_message("bob", "room again")


async def test_list_and_fetch_take_the_maximum_limit_and_reject_more(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(redis_url=redis_url)
    peer = await Peer.connect(server.url)
    await peer.register_login("ann")
    for op in ("list_users", "fetch"):
        await peer.ok(op, limit=1000)
        assert (await peer.request(op, limit=1001))["error"] == "bad_request"


async def test_pathological_list_users_pattern_is_answered_at_once(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(redis_url=redis_url)
    peer = await Peer.connect(server.url)
    await peer.register_login("a" * 32)
    for name in ("a" * 31 + "c", "a" * 20):
        await peer.ok("register", username=name, password="correct horse")
    started = time.perf_counter()
    for _ in range(20):  # a backtracking matcher needed minutes for one of these
        reply = await peer.ok("list_users", pattern="*a" * 127 + "b")
        assert reply["users"] == [] and reply["cursor"] is None
    assert time.perf_counter() - started < 5.0
    assert (await peer.ok("list_users", pattern="*a*a*?c"))["users"] == ["a" * 31 + "c"]


# A client that stops reading ----------------------------------------------------

def _masked_text_frame(text: str) -> bytes:
    """One client-to-server text frame, masked as RFC 6455 requires."""
    data, mask = text.encode(), os.urandom(4)
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def open_non_reader(server: ServerProc, token: str) -> socket.socket:
    """A raw WebSocket with a tiny receive buffer that resumes `token`, then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning either
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {server.host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    assert received.startswith(b"HTTP/1.1 101"), received
    sock.sendall(_masked_text_frame(json.dumps({"op": "resume", "id": 1, "token": token})))
    received = received.partition(b"\r\n\r\n")[2]
    while b'"ok":true' not in received:
        received += sock.recv(4096)
    return sock


def rss_kib(server: ServerProc) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def drained_to_the_end(sock: socket.socket) -> bool:
    """Read what is buffered; True once the server has closed or reset the socket."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


async def test_client_that_never_reads_is_cut_off_and_its_messages_stay_in_the_inbox(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-outbox-frames", "20", "--requests-per-second", "100000",
                          "--request-burst", "100000", redis_url=redis_url)
    alice, watcher = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await watcher.register_login("watcher")
    setup = await Peer.connect(server.url)
    token = (await setup.register_login("slow"))["token"]
    await setup.close()
    slow = await asyncio.to_thread(open_non_reader, server, token)
    rss_before = rss_kib(server)
    body = "\U0001F600" * 4096  # 16 KiB of UTF-8 per pushed frame
    sent, slowest = 0, 0.0
    while "slow consumer" not in server.log():
        assert sent < 2000, "the non-reading client was never cut off"
        for _ in range(50):
            await alice.send_raw(json.dumps({"op": "send", "id": sent, "to": "slow",
                                             "body": body, "msg_id": uuid.uuid4().hex}))
            sent += 1
        for _ in range(50):
            assert (await alice.recv())["ok"] is True
        started = time.perf_counter()
        await watcher.ok("fetch", limit=1)  # others are served during the flood
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 2.0, f"another client waited {slowest:.2f}s"
    assert rss_kib(server) - rss_before < 64 * 1024, "server memory grew with the backlog"
    assert await asyncio.to_thread(drained_to_the_end, slow)
    slow.close()
    again = await Peer.connect(server.url)
    reply = await again.ok("login", username="slow", password="correct horse")
    assert reply["unread"] == sent


async def test_client_that_pipelines_big_fetches_without_reading_is_cut_off(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-outbox-bytes", str(1024 * 1024), "--requests-per-second",
                          "100000", "--request-burst", "100000", redis_url=redis_url)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    setup = await Peer.connect(server.url)
    token = (await setup.register_login("slow"))["token"]
    await setup.close()
    for _ in range(100):
        await alice.send_message("slow", "\U0001F600" * 4096)  # fetch replies of 1.6 MB
    slow = await asyncio.to_thread(open_non_reader, server, token)
    rss_before = rss_kib(server)
    fetch = _masked_text_frame(json.dumps({"op": "fetch", "id": 2, "limit": 1000}))
    try:
        for _ in range(300):
            await asyncio.to_thread(slow.sendall, fetch)
    except (ConnectionResetError, BrokenPipeError):
        pass  # cut off while still sending
    for _ in range(200):
        if "slow consumer" in server.log():
            break
        await asyncio.sleep(0.05)
    assert "slow consumer" in server.log()
    assert rss_kib(server) - rss_before < 64 * 1024, "server memory grew with the backlog"
    slow.close()
    assert (await alice.ok("fetch", limit=1))["unread"] == 0
