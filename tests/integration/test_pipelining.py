"""A client that pipelines requests: replies in request order, sends stored in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.conftest import StartServer
from tests.scrape import metrics, value
from tests.wsclient import Peer

FAST = ("--requests-per-second", "100000", "--request-burst", "100000")


def send_frame(request_id: int, to: str, body: str) -> str:
    return json.dumps({"op": "send", "id": request_id, "to": to, "body": body,
                       "msg_id": f"p-{request_id}"})


async def pipeline(peer: Peer, frames: list[str]) -> list[dict[str, Any]]:
    """Write every frame before reading any reply; the replies, in arrival order."""
    for frame in frames:
        await peer.send_raw(frame)
    return [await peer.recv() for _ in frames]


async def test_pipelined_sends_are_answered_in_request_order_and_stored_in_send_order(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*FAST, redis_url=redis_url)
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    replies = await pipeline(alice, [send_frame(i, "bob", str(i)) for i in range(1, 301)])
    assert [r["id"] for r in replies] == list(range(1, 301))
    assert all(r["ok"] is True for r in replies)
    fetched = await bob.ok("fetch", limit=1000)
    assert [m["body"] for m in fetched["messages"]] == [str(i) for i in range(1, 301)]


async def test_a_bad_frame_and_a_fetch_between_pipelined_sends_are_answered_in_place(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*FAST, redis_url=redis_url)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    frames = [
        send_frame(1, "alice", "one"), send_frame(2, "alice", "two"),
        json.dumps({"op": "send", "id": 3, "to": "alice"}),  # no body, no msg_id
        send_frame(4, "alice", "four"),
        json.dumps({"op": "fetch", "id": 5, "limit": 10}),
        send_frame(6, "nobody", "six"), send_frame(7, "alice", "seven"),
    ]
    replies = await pipeline(alice, frames)
    assert [r["id"] for r in replies] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["ok"] for r in replies] == [True, True, False, True, True, False, True]
    assert (replies[2]["error"], replies[5]["error"]) == ("bad_request", "no_such_user")
    # The fetch is answered after every send before it is stored.
    assert [m["body"] for m in replies[4]["messages"]] == ["one", "two", "four"]


async def test_pipelined_sends_of_several_senders_keep_each_senders_order_under_wait(
    sentinel_set: LocalSet, start_server: StartServer
) -> None:
    server = start_server(*FAST, "--sentinel", sentinel_set.sentinel_arg,
                          "--sentinel-master", sentinel_set.master_name)
    carol = await Peer.connect(server.url)
    await carol.register_login("carol")
    senders = [await Peer.connect(server.url) for _ in range(3)]
    for i, peer in enumerate(senders):
        await peer.register_login(f"sender{i}")
    count = 200
    results = await asyncio.gather(*(
        pipeline(peer, [json.dumps({"op": "send", "id": k, "to": "carol", "body": f"{i}:{k}",
                                    "msg_id": f"s{i}-{k}"}) for k in range(1, count + 1)])
        for i, peer in enumerate(senders)))
    for replies in results:
        assert [r["id"] for r in replies] == list(range(1, count + 1))
        assert all(r["ok"] is True for r in replies)
    fetched = (await carol.ok("fetch", limit=1000))["messages"]
    assert len(fetched) == 3 * count
    for i in range(3):
        mine = [int(m["body"].split(":")[1]) for m in fetched if m["from"] == f"sender{i}"]
        assert mine == list(range(1, count + 1))


async def test_sends_a_client_pipelines_share_group_commits(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*FAST, redis_url=redis_url)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    before = value(await metrics(server.http_url), "chat_commit_batch_size_count")
    replies = await pipeline(alice, [send_frame(i, "alice", str(i)) for i in range(1, 65)])
    assert all(r["ok"] is True for r in replies)
    batches = value(await metrics(server.http_url), "chat_commit_batch_size_count") - before
    assert batches <= 32, f"64 pipelined sends took {batches} group commits"
