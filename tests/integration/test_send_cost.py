"""Commands Redis runs per send and per ack, counted by INFO commandstats on a
real Valkey (no MONITOR): a guard against send.lua and ack.lua growing again.

Before the dedupe window (243df5b) a send ran 10 commands in steady state
(HGET, EXISTS, XLEN, XREVRANGE, XADD, HSET, ZADD, ZRANGEBYSCORE, HDEL, ZREM)
and an ack 1 (XTRIM); with the window and the quotas (680621c) a send ran 6
(HGET, HMGET, XREVRANGE, XADD, HSETEX, HSET) and an ack 4-5, reading every
removed entry back (XRANGE). Now a run of sends to one recipient costs one
HMGET, one HSETEX, one RPUSH and one HSET plus an XADD per message, and an
ack reads the ledger instead of the entries (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
from redis.asyncio import Redis

from server.data.commit import GroupCommitter
from server.store import Store

SENDS = 200
RUN = 4  # a client's pipelined sends: neighbours in one batch


def calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


#: Commands the test itself or the committer issue outside the scripts.
OUTSIDE = {"evalsha", "incr", "config|resetstat", "info"}


async def measure(redis_url: str, *, together: int, names: tuple[str, ...] = ("bob",)
                  ) -> tuple[dict[str, int], dict[str, int]]:
    """Commands of SENDS sends (`together` at a time, as one batch, to each of
    `names` in turn), then of one ack per message."""
    sync = redis.Redis.from_url(redis_url)
    client = Redis.from_url(redis_url, decode_responses=True)
    committer = GroupCommitter(client, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    try:
        store = Store(client, committer, max_inbox=10_000)
        await store.load_scripts()
        assert store.dedupe.layout == "hsetex"
        for name in names:
            assert await store.register(name, "hash", gen="g", now_ms=1)
            await store.send(sender="alice", to=name, body="first", msg_id="m-first",
                             now_ms=int(time.time() * 1000))  # counts the empty inbox once
        sync.config_resetstat()
        sent: list[tuple[str, str]] = []
        for i in range(0, SENDS, together):
            to = [names[j % len(names)] for j in range(together)]
            results = await asyncio.gather(*(
                store.send(sender="alice", to=to[j], body="x" * 256, msg_id=f"m{i + j}",
                           now_ms=int(time.time() * 1000)) for j in range(together)))
            sent += [(name, r.seq) for name, r in zip(to, results, strict=True)]
        sends = calls(sync)
        sync.config_resetstat()
        for name, seq in sent:
            await store.ack(name, seq)
        acks = calls(sync)
    finally:
        await committer.close()
        await client.aclose()
        sync.close()
    return sends, acks


def per_message(counted: dict[str, int]) -> float:
    return sum(n for name, n in counted.items() if name not in OUTSIDE) / SENDS


async def test_a_send_on_its_own_runs_five_commands_and_an_ack_six(redis_url: str) -> None:
    sends, acks = await measure(redis_url, together=1)
    print(f"\nMEASURED one at a time: commands per send {per_message(sends):g}, per ack "
          f"{per_message(acks):g}: {sends} {acks}")
    assert per_message(sends) <= 5, sends  # HMGET, HSETEX, XADD, RPUSH, HSET
    assert "xrange" not in acks and "xrevrange" not in sends, (sends, acks)
    assert per_message(acks) <= 6, acks  # XTRIM, LPOP, HMGET, XLEN, HSET, HDEL


async def test_neighbouring_sends_to_one_recipient_share_the_account_and_ledger_writes(
        redis_url: str) -> None:
    sends, _ = await measure(redis_url, together=RUN)
    print(f"\nMEASURED {RUN} together: commands per send {per_message(sends):g}: {sends}")
    assert sends["xadd"] == SENDS
    # One HMGET, HSETEX, RPUSH and HSET per run of RUN sends.
    assert per_message(sends) <= 1 + 4 / RUN, sends


async def test_sends_to_one_recipient_between_others_share_the_account_and_ledger_writes(
        redis_url: str) -> None:
    """Sends that did not arrive next to each other (clients that do not
    pipeline, several groups in one batch) still form one run per recipient."""
    sends, _ = await measure(redis_url, together=2 * RUN, names=("bob", "carol"))
    print(f"\nMEASURED {RUN} to each of 2 recipients, alternating: commands per send "
          f"{per_message(sends):g}: {sends}")
    assert sends["xadd"] == SENDS
    assert per_message(sends) <= 1 + 4 / RUN, sends


def test_the_send_cost_measurement_runs_every_variant_on_real_valkey() -> None:
    from bench import script_variants, sendcost

    result = sendcost.measure(rounds=1, messages=256, batch=64, run=4, body_bytes=16)
    readable = {v.name for v in script_variants.variants()}  # baselines need the git history
    assert "current" in readable
    assert set(result["cpu_s_per_1k"]) == readable
    assert all(x >= 0 for x in result["cpu_s_per_1k"].values())
