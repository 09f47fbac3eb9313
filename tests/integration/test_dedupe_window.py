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
