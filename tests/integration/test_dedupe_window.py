"""The dedupe window on a real server: announced at login, a resend within it is
the first send, and its record is gone soon after it even with no later send."""

from __future__ import annotations

import asyncio
import time

import redis

from server import keys
from tests.conftest import StartServer
from tests.wsclient import Peer

#: Allowed lag of the server's active expiry (docs/operations.md: dedupe window).
SLACK_S = 3.0


async def test_login_and_resume_announce_the_dedupe_window(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--dedupe-window-s", "90", redis_url=redis_url)
    peer = await Peer.connect(server.url)
    login = await peer.register_login("alice")
    assert login["dedupe_window_ms"] == 90_000
    other = await Peer.connect(server.url)
    assert (await other.ok("resume", token=login["token"]))["dedupe_window_ms"] == 90_000


async def test_a_resend_within_the_window_is_the_first_send_and_after_it_a_new_one(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--dedupe-window-s", "2", redis_url=redis_url)
    bob, alice = await Peer.connect(server.url), await Peer.connect(server.url)
    await bob.register_login("bob")
    await alice.register_login("alice")
    first = await alice.send_message("bob", "hello", msg_id="m1")
    retry = await alice.send_message("bob", "hello again", msg_id="m1")
    assert retry["ts"] == first["ts"]
    assert (await bob.ok("fetch"))["unread"] == 0
    assert len((await bob.ok("fetch"))["messages"]) == 1
    # Nobody sends to bob meanwhile: the record still goes, on its own.
    db = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 2 + SLACK_S
    while time.monotonic() < deadline:
        if not db.exists(keys.dedupe("bob")):
            break
        await asyncio.sleep(0.1)
    assert not db.exists(keys.dedupe("bob")), db.hgetall(keys.dedupe("bob"))
    db.close()
    late = await alice.send_message("bob", "hello late", msg_id="m1")
    assert late["ts"] > first["ts"]
    assert len((await bob.ok("fetch"))["messages"]) == 2


async def test_after_an_upgrade_a_retry_of_a_message_stored_before_it_is_still_recognised(
    redis_url: str, start_server: StartServer
) -> None:
    first = start_server(redis_url=redis_url)
    bob, alice = await Peer.connect(first.url), await Peer.connect(first.url)
    await bob.register_login("bob")
    await alice.register_login("alice")
    await bob.close()
    await alice.close()
    first.stop()
    # What the version before the window left: a record without expiry and its index.
    db = redis.Redis.from_url(redis_url, decode_responses=True)
    seq = db.xadd(keys.inbox("bob"), {"msg_id": "old1", "from": "alice", "to": "bob",
                                      "body": "before", "ts": "1700000000000"})
    db.hset(keys.seen("bob"), "alice:old1", f"1700000000000 {seq!s}")
    db.zadd(keys.seen_expiry("bob"), {"alice:old1": 1700000000000 + 86_400_000})
    upgraded = start_server("--dedupe-window-s", "60", redis_url=redis_url)
    alice = await Peer.connect(upgraded.url)
    await alice.ok("login", username="alice", password="correct horse")
    retry = await alice.send_message("bob", "before, again", msg_id="old1")
    assert retry["ts"] == 1700000000000
    assert db.xlen(keys.inbox("bob")) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the start-up scan runs in the background
        if db.pttl(keys.seen("bob")) > 0 and db.pttl(keys.seen_expiry("bob")) > 0:
            break
        await asyncio.sleep(0.1)
    assert 0 < db.pttl(keys.seen("bob")) <= 60_000
    assert 0 < db.pttl(keys.seen_expiry("bob")) <= 60_000
    db.close()
