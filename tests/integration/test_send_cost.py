"""Commands Redis runs per send and per ack, counted by INFO commandstats on a
real Valkey (no MONITOR): a guard against send.lua growing again.

Before the dedupe window (243df5b) a send ran 10 commands in steady state
(HGET, EXISTS, XLEN, XREVRANGE, XADD, HSET, ZADD, ZRANGEBYSCORE, HDEL, ZREM)
and an ack 1 (XTRIM); see docs/operations.md.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.asyncio import Redis

from server.data.commit import GroupCommitter
from server.store import Store

SENDS = 200


def calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_a_send_runs_six_commands_and_an_ack_five(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    client = Redis.from_url(redis_url, decode_responses=True)
    committer = GroupCommitter(client, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    try:
        store = Store(client, committer, max_inbox=10_000)
        await store.load_scripts()
        assert store.layout == "hsetex"
        assert await store.register("bob", "hash", gen="g", now_ms=1)
        sync.config_resetstat()
        seqs = [(await store.send(sender="alice", to="bob", body="x" * 256, msg_id=f"m{i}",
                                  now_ms=int(time.time() * 1000))).seq for i in range(SENDS)]
        sends = calls(sync)
        sync.config_resetstat()
        for seq in seqs:
            await store.ack("bob", seq)
        acks = calls(sync)
    finally:
        await committer.close()
        await client.aclose()
        sync.close()
    inside = {"evalsha", "incr", "config|resetstat", "info"}
    per_send = sum(n for name, n in sends.items() if name not in inside) / SENDS
    per_ack = sum(n for name, n in acks.items() if name not in inside) / SENDS
    print(f"\nMEASURED commands per send {per_send:g}, per ack {per_ack:g}: {sends} {acks}")
    assert per_send <= 6 + 3 / SENDS, sends  # + the first send counting the empty inbox
    assert per_ack <= 5, acks
