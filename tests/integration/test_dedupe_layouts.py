"""Where the dedupe layouts meet on real Valkey: instances' clocks apart (key
generations), a node without hash-field expiry (an older version promoted,
or a replica of one), and an upgrade from generations to field expiry. In
each, a resend within the window is recognised and never stored twice, and
no acked message is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from server import keys
from server.data.commit import GroupCommitter
from server.store import Store
from server.wire import errors
from tests.conftest import StartServer
from tests.integration.conftest import MakeSentinelSet
from tests.procs import RedisNode, free_port
from tests.wsclient import Peer

WINDOW_MS = 60_000
#: What Redis 7.2 lacks of hash-field expiry (7.4 added HPEXPIRE/HPTTL, 8.0 HSETEX/HGETEX).
NO_FIELD_EXPIRY = ("HSETEX", "HGETEX", "HPEXPIRE", "HPTTL")


def without(commands: tuple[str, ...]) -> str:
    """Config lines that make a Valkey 9 lack `commands`, as an older version does."""
    return "".join(f'rename-command {command} ""\n' for command in commands)


@pytest.fixture
def old_node(tmp_path: Path) -> Iterator[RedisNode]:
    """A Valkey without hash-field expiry, like Redis 7.0-7.2."""
    node = RedisNode(datadir=tmp_path / "old", port=free_port())
    node.write_config(without(NO_FIELD_EXPIRY))
    node.start()
    yield node
    node.stop()


@asynccontextmanager
async def store_on(url: str, **kwargs: Any) -> AsyncIterator[Store]:
    """A Store of an instance on `url` (no replica to wait for), bob registered."""
    client = Redis.from_url(url, decode_responses=True)
    committer = GroupCommitter(client, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    try:
        store = Store(client, committer, max_inbox=100, dedupe_window_ms=WINDOW_MS, **kwargs)
        await store.load_scripts()
        await store.register("bob", "hash", gen="g", now_ms=1)
        yield store
    finally:
        await committer.close()
        await client.aclose()


async def send(store: Store, msg_id: str, now_ms: int) -> int:
    """The ts of the send (the first send's for a resend)."""
    return (await store.send(sender="alice", to="bob", body="hi", msg_id=msg_id,
                             now_ms=now_ms)).ts


def next_boundary() -> int:
    """The start (ms) of the next generation of WINDOW_MS."""
    return (int(time.time() * 1000) // WINDOW_MS + 1) * WINDOW_MS


# (a) key generations, instances' clocks up to 2 s apart ------------------------------


@pytest.mark.parametrize(("first", "resend"), [
    (+500, -1_000),  # stamped by a clock ahead (next generation), resent via one behind
    (-500, WINDOW_MS + 500),  # stamped just before a boundary, resent 1 s before the
                              # window ends via a clock 2 s ahead (two generations on)
], ids=["ahead-then-behind", "behind-then-ahead-at-the-window-end"])
async def test_with_generations_a_resend_stamped_by_another_clock_is_recognised(
        redis_url: str, first: int, resend: int) -> None:
    async with store_on(redis_url, dedupe_layout="generations") as store:
        boundary = next_boundary()
        ts = await send(store, "m1", boundary + first)
        assert await send(store, "m1", boundary + resend) == ts
        assert await store.unread("bob") == 1


async def test_deleting_an_account_removes_a_record_stamped_by_a_clock_ahead(
        redis_url: str) -> None:
    async with store_on(redis_url, dedupe_layout="generations") as store:
        boundary = next_boundary()
        await send(store, "m1", boundary + 500)
        assert await store.delete_account("bob", gen="g", now_ms=boundary - 1_000)
        await store.register("bob", "hash", gen="g2", now_ms=boundary)
        # The new bob's first message with that msg_id is a new one.
        assert await send(store, "m1", boundary) == boundary
        assert await store.unread("bob") == 1


# (b) a node without the layout's commands -------------------------------------------


@pytest.mark.parametrize("layout", ["hsetex", "hpexpire"])
async def test_a_node_without_the_layouts_commands_refuses_before_writing_and_the_resend_is_stored(
        old_node: RedisNode, layout: str) -> None:
    # The instance chose `layout` on the node before; a failover put an older one there.
    async with store_on(old_node.url, dedupe_layout=layout) as store:
        now = int(time.time() * 1000)
        with pytest.raises(errors.Unavailable):
            await send(store, "m1", now)
        db = redis.Redis.from_url(old_node.url)
        assert db.keys(f"{keys.PREFIX}:{{bob}}:dedupe*") == []  # no record without its message
        assert await store.unread("bob") == 0
        # The client resends: the store asked again and writes what the node has.
        assert await send(store, "m1", now + 100) == now + 100
        assert store.dedupe.layout == "generations"
        assert await send(store, "m1", now + 200) == now + 100
        assert await store.unread("bob") == 1
        db.close()


@pytest.mark.slow
async def test_a_set_with_an_older_replica_writes_what_it_can_apply_and_loses_nothing_at_failover(
        make_sentinel_set: MakeSentinelSet, start_server: StartServer) -> None:
    """A rolling upgrade half done: the primary has field expiry, its replica not.

    The replica drops a whole script whose effects it cannot apply (its XADD
    included) yet acks the offset to WAIT, so the layout must be one every
    node can write; after the older node is promoted, sends go on and a
    resend of a message acked before is recognised."""
    local = make_sentinel_set(replicas=1, down_after_ms=1000)
    replica = local.nodes[1]
    replica.stop()
    with replica.conf_path.open("a") as conf:
        conf.write(without(NO_FIELD_EXPIRY))
    replica.start()
    local.wait_healthy()
    server = start_server("--sentinel", local.sentinel_arg, "--sentinel-master",
                          local.master_name)
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await bob.register_login("bob")
    await alice.register_login("alice")
    acked = [await alice.send_message("bob", f"before {i}", msg_id=f"m{i}") for i in range(5)]
    assert "layout generations" in server.log()

    local.kill_node(0)
    local.wait_for_failover(local.nodes[0].address)
    resent = await until_ok(alice, "bob", "before 0, again", "m0")
    assert resent["ts"] == acked[0]["ts"]
    after = await until_ok(alice, "bob", "after", f"n{uuid.uuid4().hex[:6]}")
    got = (await bob.ok("fetch"))["messages"]
    assert [m["msg_id"] for m in got] == [f"m{i}" for i in range(5)] + [after["msg_id"]]


async def until_ok(peer: Peer, to: str, body: str, msg_id: str) -> dict[str, Any]:
    """Send until `ok` (the failover answers `unavailable` for a while)."""
    deadline = time.monotonic() + 30
    while True:
        reply = await peer.request("send", to=to, body=body, msg_id=msg_id)
        if reply["ok"]:
            return {**reply, "msg_id": msg_id}
        assert reply["error"] == "unavailable", reply
        assert time.monotonic() < deadline, reply
        await asyncio.sleep(0.1)


# (c) an upgrade from generations to field expiry ---------------------------------------


async def test_after_an_upgrade_to_field_expiry_a_resend_recorded_in_a_generation_is_recognised(
        redis_url: str) -> None:
    now = int(time.time() * 1000)
    async with store_on(redis_url, dedupe_layout="generations") as before:
        ts = [await send(before, f"m{i}", now - i * WINDOW_MS // 2) for i in range(2)]
    # A new instance on the upgraded set: field expiry, generation hashes found at start.
    async with store_on(redis_url) as after:
        assert after.dedupe.layout == "hsetex"
        await after.dedupe.adopt_older_records()
        assert [await send(after, f"m{i}", now + 1_000) for i in range(2)] == ts
        assert await after.unread("bob") == 2


async def test_an_instance_that_sees_its_set_upgraded_still_reads_the_generations(
        redis_url: str, old_node: RedisNode) -> None:
    # The set's only member moves from an old node to an upgraded one (a failover).
    member = ["old"]
    urls = {"old": old_node.url, "new": redis_url}
    clients = {name: Redis.from_url(url, decode_responses=True) for name, url in urls.items()}
    async with store_on(redis_url, set_members=lambda: tuple(member),
                        node=clients.__getitem__) as store:
        assert store.dedupe.layout == "generations"
        now = int(time.time() * 1000)
        ts = await send(store, "m1", now)
        member[0] = "new"
        assert await send(store, "m1", now + WINDOW_MS - 1_000) == ts
        assert store.dedupe.layout == "hsetex"
        assert await store.unread("bob") == 1
    for client in clients.values():
        await client.aclose()


async def test_a_member_that_does_not_answer_leaves_the_layout_as_it_was_until_asked_again(
        redis_url: str, old_node: RedisNode) -> None:
    # At a failover the dead primary stays listed until the Sentinels agree.
    member = ["old"]
    urls = {"old": old_node.url, "new": redis_url, "dead": f"redis://127.0.0.1:{free_port()}/0"}
    clients = {name: Redis.from_url(url, decode_responses=True) for name, url in urls.items()}
    async with store_on(redis_url, set_members=lambda: tuple(member),
                        node=clients.__getitem__) as store:
        now = int(time.time() * 1000)
        await send(store, "m1", now)
        member[:] = ["new", "dead"]
        await send(store, "m2", now + 1)
        assert store.dedupe.layout == "generations"  # not the fallback, not a guess
        assert "generations" not in store.dedupe.older_until_ms
        member[:] = ["new"]
        await asyncio.sleep(1.1)  # ASK_AGAIN_S
        await send(store, "m3", now + 2)
        assert store.dedupe.layout == "hsetex"
    for client in clients.values():
        await client.aclose()
