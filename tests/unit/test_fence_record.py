"""server/data/scripts/fence_record.lua on fakeredis: the record a fence takes."""

from __future__ import annotations

from redis.asyncio import Redis

from server import keys
from server.storage.fencer import FENCE_RECORD

A, C = "10.0.0.2:6379", "10.0.0.3:6379"


async def record(redis: Redis, addr: str, priority: int, *anchors: str) -> int:
    return int(await redis.eval(FENCE_RECORD, 1, keys.FENCES, addr, priority, *anchors))


async def test_record_is_taken_while_an_anchor_is_not_fenced(redis: Redis) -> None:
    assert await record(redis, C, 100, A) == 1
    assert await redis.hgetall(keys.FENCES) == {C: "100"}


async def test_fencing_the_only_anchor_of_a_fenced_node_is_refused(redis: Redis) -> None:
    assert await record(redis, C, 100, A) == 1
    assert await record(redis, A, 100, C) == 0  # another instance, a moment later
    assert await redis.hgetall(keys.FENCES) == {C: "100"}


async def test_a_node_already_recorded_keeps_its_first_priority(redis: Redis) -> None:
    await redis.hset(keys.FENCES, C, 70)
    assert await record(redis, C, 0, A) == 1
    assert await redis.hget(keys.FENCES, C) == "70"


async def test_no_anchor_no_record(redis: Redis) -> None:
    assert await record(redis, C, 100) == 0
    assert await redis.hgetall(keys.FENCES) == {}
