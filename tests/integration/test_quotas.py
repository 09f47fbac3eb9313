"""Inbox quotas on a real server: one sender fills only its share, bytes are bounded,
acks free the room, and the counters stay exact (the invariants check agrees)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import StartServer
from tests.procs import ROOT
from tests.wsclient import Peer


def invariants(redis_url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "server.invariants", "--redis-url", redis_url],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_the_51st_undelivered_message_from_one_sender_is_too_large_until_an_ack(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-pending-per-sender", "50", redis_url=redis_url)
    bob, alice, carol = [await Peer.connect(server.url) for _ in range(3)]
    await bob.register_login("bob")
    await alice.register_login("alice")
    await carol.register_login("carol")
    for i in range(50):
        await alice.send_message("bob", f"hi {i}", msg_id=f"a{i}")
    refused = await alice.request("send", to="bob", body="one more", msg_id="a50")
    assert (refused["ok"], refused["error"]) == (False, "too_large"), refused
    await carol.send_message("bob", "still gets through", msg_id="c0")
    page = await bob.ok("fetch", limit=1)
    await bob.ok("ack", seq=page["messages"][0]["seq"])
    await alice.send_message("bob", "room again", msg_id="a50")
    assert invariants(redis_url).startswith("ok")


async def test_4096_character_bodies_stop_at_or_below_the_inbox_byte_bound(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-inbox-bytes", "100000", redis_url=redis_url)
    bob, alice = await Peer.connect(server.url), await Peer.connect(server.url)
    await bob.register_login("bob")
    await alice.register_login("alice")
    stored = 0
    for i in range(100):
        reply = await alice.request("send", to="bob", body="x" * 4096, msg_id=f"m{i}")
        if not reply["ok"]:
            assert reply["error"] == "too_large", reply
            break
        stored += 1
    assert stored == 100_000 // 4096  # 24 messages, 98,304 bytes
    page = await bob.ok("fetch", limit=1000)
    assert sum(len(m["body"].encode()) for m in page["messages"]) <= 100_000
    await bob.ok("ack", seq=page["messages"][-1]["seq"])
    await alice.send_message("bob", "x" * 4096, msg_id="after-ack")
    assert invariants(redis_url).startswith("ok")
