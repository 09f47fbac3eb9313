"""Every limit on what a client controls, against a real server.

Frame size, body size, names and bad arguments are in test_errors.py; here
are the limits that need load to reach: request rate, connections per
address, inbox length and a client that never reads.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from websockets.exceptions import InvalidMessage

from tests.conftest import StartServer
from tests.rawws import drained_to_the_end, open_non_reader, rss_kib
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


async def test_connections_over_the_per_address_cap_are_closed_at_once(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-connections-per-ip", "3", redis_url=redis_url)
    peers = [await Peer.connect(server.url) for _ in range(3)]
    with pytest.raises(InvalidMessage):  # closed before a byte of it was read
        await Peer.connect(server.url)
    await peers.pop().close()
    deadline = time.monotonic() + 10
    while True:  # the server counts the close when its handler finishes
        try:
            peers.append(await Peer.connect(server.url))
            break
        except InvalidMessage:
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
