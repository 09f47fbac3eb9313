"""Delivery's push decisions without Redis: a fake inbox, notifications handed in directly.

The listener's reading of a real pub/sub connection is tested in
tests/integration/test_delivery.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest

from server import keys
from server.delivery.fanout import Delivery
from server.delivery.pushes import seq_key
from server.storage.channels import Channels, Feed
from server.storage.pubsub_reader import PubSubReader
from server.store import Store
from server.wire import notifications, protocol


def _message(name: str, seq: str) -> dict[str, Any]:
    return protocol.message(msg_id=f"m-{seq}", sender="alice", to=name, body=seq, ts=1, seq=seq)


class FakeInbox:
    """The Store reads delivery makes, over a list; `hold` blocks read_range."""

    def __init__(self) -> None:
        self.entries: dict[str, list[str]] = {}
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()
        self.reads = 0

    async def inbox_tails(self, names: list[str]) -> dict[str, str]:
        return {n: (self.entries.get(n) or ["0-0"])[-1] for n in names}

    async def account_gens(self, names: list[str]) -> dict[str, str | None]:
        return {n: "g" for n in names}

    async def read_range(
        self, name: str, *, after: str, upto: str = "+", count: int = 1000
    ) -> list[dict[str, Any]]:
        self.reads += 1
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        lo, hi = seq_key(after), seq_key(upto)
        return [_message(name, s) for s in self.entries.get(name, []) if lo < seq_key(s) <= hi]


class Session:
    def __init__(self, conn_id: str) -> None:
        self.gen, self.conn_id, self.last_seq = "g", conn_id, "0-0"
        self.token_hash: str | None = None
        self.seqs: list[str] = []  # every message it got, pushed or delivered, in order

    def deliver(self, message: dict[str, Any]) -> None:
        self.seqs.append(message["seq"])

    def push(self, frame: bytes) -> None:
        self.seqs.append(orjson.loads(frame)["message"]["seq"])

    def kick_deleted(self) -> None:
        raise AssertionError("not deleted")

    def end_by(self, reason: str, token_hash: str) -> None:
        raise AssertionError("no token")


@pytest.fixture
async def inbox() -> FakeInbox:
    return FakeInbox()


@pytest.fixture
async def delivery(inbox: FakeInbox) -> AsyncIterator[Delivery]:
    # Never started: no listener, no sweep; notifications are handed in below.
    yield Delivery(cast(Channels, None), cast(Store, inbox), instance_id="t",
                   sweep_interval_ms=60_000, push_grace_ms=0)


async def notify(delivery: Delivery, name: str, seq: str, prev: str) -> None:
    data = notifications.message(seq, prev, _message(name, seq)).decode()
    await delivery._dispatch_all([(keys.channel(name), data)])


async def test_notification_during_a_sweep_catch_up_waits_for_it_no_duplicate_no_reorder(
    delivery: Delivery, inbox: FakeInbox,
) -> None:
    session = Session("c1")
    inbox.entries["bob"] = ["5-1"]
    await delivery.attach("bob", session)  # has everything up to 5-1
    inbox.entries["bob"] += ["5-2", "5-3"]  # both written; notifications still on their way
    inbox.hold = asyncio.Event()
    sweep = asyncio.create_task(delivery._catch_up_all())  # holds bob's lock, reading
    await inbox.reading.wait()
    # 5-2 follows what the session has: pushable at once, were the sweep not reading.
    arrived = asyncio.create_task(notify(delivery, "bob", "5-2", "5-1"))
    await asyncio.sleep(0.01)
    assert session.seqs == []
    inbox.hold.set()
    await asyncio.gather(sweep, arrived)
    await notify(delivery, "bob", "5-3", "5-2")
    assert session.seqs == ["5-2", "5-3"]


async def test_session_up_to_date_gets_the_push_while_one_behind_reads_the_inbox(
    delivery: Delivery, inbox: FakeInbox,
) -> None:
    ahead, behind = Session("c1"), Session("c2")
    inbox.entries["bob"] = ["5-1"]
    await delivery.attach("bob", ahead)
    await delivery.attach("bob", behind)
    behind.last_seq = "0-0"  # missed 5-1
    inbox.entries["bob"].append("5-2")
    await notify(delivery, "bob", "5-2", "5-1")
    assert ahead.seqs == ["5-2"]
    assert behind.seqs == ["5-1", "5-2"]
    assert inbox.reads == 1


async def test_notification_already_pushed_is_not_pushed_again(
    delivery: Delivery, inbox: FakeInbox,
) -> None:
    session = Session("c1")
    await delivery.attach("bob", session)
    inbox.entries["bob"] = ["5-1"]
    await notify(delivery, "bob", "5-1", "0-0")
    await notify(delivery, "bob", "5-1", "0-0")
    assert session.seqs == ["5-1"]
    assert inbox.reads == 0


async def test_notification_for_a_user_who_left_is_ignored(
    delivery: Delivery, inbox: FakeInbox,
) -> None:
    session = Session("c1")
    await delivery.attach("bob", session)
    await delivery.detach("bob", session)
    await notify(delivery, "bob", "5-1", "0-0")
    assert session.seqs == [] and inbox.reads == 0


def feed(name: str) -> Feed:
    async def nothing(*channels: str) -> None:
        return None

    return Feed(name, cast(PubSubReader, None), f"ping:{name}", nothing, nothing)


async def test_the_listener_is_alive_only_when_its_ping_came_back_on_every_shard(
        delivery: Delivery) -> None:
    # One feed per Cluster shard: a deaf connection to one shard turns /healthz red.
    feeds = [feed("shard-a"), feed("shard-b")]
    delivery._feeds = feeds
    await delivery._dispatch_all([("ping:shard-a", '{"k":"ping"}')], feeds[0])
    assert not delivery.listener_alive(60)
    await delivery._dispatch_all([("ping:shard-b", '{"k":"ping"}')], feeds[1])
    assert delivery.listener_alive(60)
