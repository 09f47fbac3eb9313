"""The chat ops end to end: real Redis, two real server instances, raw WebSocket peers."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.procs import ServerProc
from tests.wsclient import Peer

PASSWORD = "correct horse"


async def test_message_sent_via_instance_a_reaches_user_on_instance_b_live(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice, bob = await Peer.connect(a.url), await Peer.connect(b.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    reply = await alice.send_message("bob", "hello across instances", msg_id="m-1")
    event = await bob.event()
    assert event["event"] == "message"
    message = event["message"]
    assert message["from"] == "alice" and message["to"] == "bob"
    assert message["body"] == "hello across instances"
    assert message["msg_id"] == "m-1"
    assert message["ts"] == reply["ts"]
    assert isinstance(message["seq"], str)


async def test_push_reaches_every_connection_of_the_recipient(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    sender = await Peer.connect(a.url)
    await sender.register_login("alice")
    on_a, on_b = await Peer.connect(a.url), await Peer.connect(b.url)
    await on_a.register_login("bob")
    await on_b.ok("login", username="bob", password=PASSWORD)
    await sender.send_message("bob", "to both")
    assert (await on_a.event())["message"]["body"] == "to both"
    assert (await on_b.event())["message"]["body"] == "to both"


async def test_offline_message_is_counted_at_login_and_fetched_oldest_first(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    await alice.ok("register", username="bob", password=PASSWORD)
    for i in range(3):
        await alice.send_message("bob", f"queued {i}")
    bob = await Peer.connect(b.url)
    login = await bob.ok("login", username="bob", password=PASSWORD)
    assert login["unread"] == 3
    fetched = await bob.ok("fetch", limit=2)
    assert [m["body"] for m in fetched["messages"]] == ["queued 0", "queued 1"]
    assert fetched["unread"] == 1
    again = await bob.ok("fetch")
    assert len(again["messages"]) == 3, "fetch must not remove messages"


async def test_ack_is_cumulative_and_removes_from_inbox(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, _ = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    bob = await Peer.connect(a.url)
    await bob.register_login("bob")
    for i in range(5):
        await alice.send_message("bob", f"m{i}")
    messages = (await bob.ok("fetch"))["messages"]
    assert (await bob.ok("ack", seq=messages[2]["seq"]))["removed"] == 3
    left = (await bob.ok("fetch"))["messages"]
    assert [m["body"] for m in left] == ["m3", "m4"]
    assert (await bob.ok("ack", seq=messages[2]["seq"]))["removed"] == 0
    relogin = await Peer.connect(a.url)
    assert (await relogin.ok("login", username="bob", password=PASSWORD))["unread"] == 2


async def test_resend_with_same_msg_id_returns_first_reply_and_stores_one_copy(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    await alice.ok("register", username="bob", password=PASSWORD)
    first = await alice.send_message("bob", "original", msg_id="same-id")
    await asyncio.sleep(0.01)
    retry_elsewhere = await Peer.connect(b.url)
    await retry_elsewhere.ok("login", username="alice", password=PASSWORD)
    second = await retry_elsewhere.send_message("bob", "changed body", msg_id="same-id")
    assert (second["msg_id"], second["ts"]) == (first["msg_id"], first["ts"])
    bob = await Peer.connect(a.url)
    await bob.ok("login", username="bob", password=PASSWORD)
    messages = (await bob.ok("fetch"))["messages"]
    assert [m["body"] for m in messages] == ["original"]


async def test_same_msg_id_from_different_senders_are_two_messages(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, _ = two_servers
    alice, carol = await Peer.connect(a.url), await Peer.connect(a.url)
    await alice.register_login("alice")
    await carol.register_login("carol")
    await alice.ok("register", username="bob", password=PASSWORD)
    await alice.send_message("bob", "from alice", msg_id="shared")
    await carol.send_message("bob", "from carol", msg_id="shared")
    bob = await Peer.connect(a.url)
    assert (await bob.ok("login", username="bob", password=PASSWORD))["unread"] == 2


async def test_sending_to_oneself_is_delivered(two_servers: tuple[ServerProc, ServerProc]) -> None:
    a, _ = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    await alice.send_message("alice", "note to self")
    assert (await alice.event())["message"]["body"] == "note to self"


async def test_resume_restores_session_on_another_instance_and_logout_revokes(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice = await Peer.connect(a.url)
    token = (await alice.register_login("alice"))["token"]
    elsewhere = await Peer.connect(b.url)
    resumed = await elsewhere.ok("resume", token=token)
    assert resumed == {"id": resumed["id"], "ok": True, "username": "alice", "unread": 0,
                       "dedupe_window_ms": 3_600_000}
    await elsewhere.ok("logout")
    assert (await elsewhere.request("fetch"))["error"] == "unauthenticated"
    again = await Peer.connect(b.url)
    assert (await again.request("resume", token=token))["error"] == "bad_token"


async def test_replies_come_in_request_order(two_servers: tuple[ServerProc, ServerProc]) -> None:
    a, _ = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    frames: list[dict[str, object]] = [
        {"op": "send", "id": f"r{i}", "to": "alice", "body": f"b{i}", "msg_id": uuid.uuid4().hex}
        for i in range(20)
    ]
    frames.insert(7, {"op": "fetch", "id": "f", "limit": 0})  # an error in the middle
    for frame in frames:
        await alice.send_raw(json.dumps(frame))
    ids = [(await alice.recv())["id"] for _ in frames]
    assert ids == [frame["id"] for frame in frames]
