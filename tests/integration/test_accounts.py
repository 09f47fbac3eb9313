"""Listing users by pattern and deleting accounts, across instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tests.procs import ServerProc
from tests.wsclient import Peer

PASSWORD = "correct horse"


async def _register_many(url: str, names: list[str], workers: int = 4) -> None:
    """Register in parallel: as many as one address may hash at once (--max-hash-per-address)."""
    async def worker(chunk: list[str]) -> None:
        peer = await Peer.connect(url)
        for name in chunk:
            await peer.ok("register", username=name, password=PASSWORD)
        await peer.close()

    await asyncio.gather(*(worker(names[i::workers]) for i in range(workers)))


async def _list_all(peer: Peer, pattern: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = await peer.ok("list_users", pattern=pattern, limit=limit, cursor=cursor)
        assert len(page["users"]) <= limit
        seen += page["users"]
        cursor = page["cursor"]
        if cursor is None:
            return seen
    raise AssertionError("listing never finished")


async def test_paging_2500_users_with_pattern_sees_every_match_exactly_once(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    names = [f"user{i:04d}" for i in range(2500)]
    await _register_many(a.url, names)
    peer = await Peer.connect(b.url)
    await peer.register_login("zed")
    listed = await _list_all(peer, "user1?3*", limit=7)
    expected = sorted(n for n in names if n.startswith("user1") and n[6] == "3")
    assert listed == expected
    everyone = await _list_all(peer, "*", limit=1000)
    assert everyone == sorted([*names, "zed"])


async def test_paging_sees_each_existing_name_once_while_names_are_added(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    names = [f"n{i:03d}" for i in range(300)]
    await _register_many(a.url, names)
    reader = await Peer.connect(b.url)
    await reader.register_login("reader")
    adder = await Peer.connect(a.url)
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        page = await reader.ok("list_users", pattern="n*", limit=25, cursor=cursor)
        seen += page["users"]
        cursor = page["cursor"]
        if cursor is None:
            break
        for suffix in ("a", "z"):  # before and after the cursor
            await adder.ok("register", username=f"n{added:03d}{suffix}", password=PASSWORD)
        added += 1
    assert len(seen) == len(set(seen)), "a name was listed twice"
    assert set(names) <= set(seen), "a name that existed throughout was skipped"
    assert seen == sorted(seen)


async def test_pattern_treats_brackets_and_backslash_literally(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, _ = two_servers
    peer = await Peer.connect(a.url)
    await peer.register_login("ab")
    await peer.ok("register", username="a.b", password=PASSWORD)
    await peer.ok("register", username="axb", password=PASSWORD)
    assert (await peer.ok("list_users", pattern="a.b"))["users"] == ["a.b"]
    assert (await peer.ok("list_users", pattern="a?b"))["users"] == ["a.b", "axb"]
    assert (await peer.ok("list_users", pattern="[a]*"))["users"] == []
    assert (await peer.ok("list_users", pattern="a\\b"))["users"] == []


async def test_delete_while_logged_in_on_two_instances_closes_the_other_sessions(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    bob_here = await Peer.connect(a.url)
    token = (await bob_here.register_login("bob"))["token"]
    bob_same_instance = await Peer.connect(a.url)
    await bob_same_instance.ok("resume", token=token)
    bob_there = await Peer.connect(b.url)
    await bob_there.ok("login", username="bob", password=PASSWORD)
    await alice.send_message("bob", "never read")

    assert (await bob_here.request("delete_account", password="wrong password"))[
        "error"] == "bad_credentials"
    await bob_here.ok("delete_account", password=PASSWORD)

    for other in (bob_same_instance, bob_there):
        events = [e async for e in _events_until_close(other)]
        assert {"event": "account_deleted"} in events
        assert other.ws.close_code == 4001
    # The asking connection stays open, unauthenticated.
    assert (await bob_here.request("fetch"))["error"] == "unauthenticated"
    assert (await bob_here.request("resume", token=token))["error"] == "bad_token"
    assert (await alice.request("send", to="bob", body="x", msg_id="after"))[
        "error"] == "no_such_user"
    assert "bob" not in (await alice.ok("list_users"))["users"]


async def _events_until_close(peer: Peer) -> AsyncIterator[dict[str, Any]]:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            yield await peer.event(timeout=10)
    except ConnectionClosed:
        return


async def test_reregistered_name_starts_with_empty_inbox_and_new_password(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, b = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    bob = await Peer.connect(b.url)
    old_token = (await bob.register_login("bob"))["token"]
    await alice.send_message("bob", "for the old bob")
    await bob.ok("delete_account", password=PASSWORD)
    await bob.ok("register", username="bob", password="another secret")
    login = await bob.ok("login", username="bob", password="another secret")
    assert login["unread"] == 0
    assert (await bob.request("resume", token=old_token))["error"] == "bad_token"
    fresh = await Peer.connect(a.url)
    assert (await fresh.request("login", username="bob", password=PASSWORD))[
        "error"] == "bad_credentials"


async def test_messages_sent_by_a_deleted_user_stay_with_recipients(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    a, _ = two_servers
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    await alice.ok("register", username="bob", password=PASSWORD)
    await alice.send_message("bob", "still here")
    await alice.ok("delete_account", password=PASSWORD)
    bob = await Peer.connect(a.url)
    assert (await bob.ok("login", username="bob", password=PASSWORD))["unread"] == 1
