"""Failed-login counters (per name+address, per address, per name) and invariants, on fakeredis."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from server import keys
from server.invariants import check
from server.store import Store


def now() -> int:
    return int(time.time() * 1000)


async def test_failures_count_per_name_and_address_per_address_and_per_name(store: Store) -> None:
    assert await store.logins.count_failure("alice", "10.0.0.1", window_ms=60_000) == (1, 1, 1)
    assert await store.logins.count_failure("bob", "10.0.0.1", window_ms=60_000) == (1, 2, 1)
    assert await store.logins.count_failure("alice", "10.0.0.1", window_ms=60_000) == (2, 3, 2)
    assert await store.logins.count_failure("alice", "10.0.0.2", window_ms=60_000) == (1, 1, 3)
    assert await store.logins.counts("alice", "10.0.0.1") == (2, 3, 3)
    assert await store.logins.counts("carol", "10.0.0.1") == (0, 3, 0)


async def test_reading_the_counts_counts_nothing(store: Store, redis: Redis) -> None:
    for _ in range(5):
        assert await store.logins.counts("alice", "a") == (0, 0, 0)
    assert await redis.exists(keys.login_failures("alice", "a"), keys.login_failures_from("a"),
                              keys.login_failures_of("alice")) == 0


async def test_failure_with_an_impossible_name_counts_for_the_address_only(
    store: Store, redis: Redis
) -> None:
    assert await store.logins.count_failure(None, "10.0.0.1", window_ms=60_000) == (0, 1, 0)
    assert await store.logins.counts(None, "10.0.0.1") == (0, 1, 0)
    assert await redis.keys(f"{keys.PREFIX}:{{*") == []


async def test_counters_always_expire(store: Store, redis: Redis) -> None:
    await redis.set(keys.login_failures_from("a"), 5)  # a counter that lost its TTL
    await store.logins.count_failure("alice", "a", window_ms=60_000)
    assert 0 < await redis.pttl(keys.login_failures_from("a")) <= 60_000
    assert 0 < await redis.pttl(keys.login_failures("alice", "a")) <= 60_000
    assert 0 < await redis.pttl(keys.login_failures_of("alice")) <= 60_000


def test_owner_of_names_the_user_and_kind_of_every_per_user_key() -> None:
    assert keys.owner_of(keys.inbox("a.b-c")) == ("a.b-c", "inbox")
    assert keys.owner_of(keys.seen_expiry("x")) == ("x", "seen-exp")
    assert keys.owner_of(keys.login_failures("x", "::1")) == ("x", "login-fail")
    assert keys.owner_of(keys.USERS) is None
    assert keys.owner_of(keys.login_failures_from("1.2.3.4")) is None
    assert keys.owner_of("chat:{x}:unknown") is None


async def populated(store: Store) -> None:
    for name in ("alice", "bob"):
        assert await store.register(name, f"hash-{name}", gen="g1", now_ms=now())
    await store.send(sender="alice", to="bob", body="hi", msg_id="m1", now_ms=now())
    await store.sessions.issue_token("bob", "f" * 64, gen="g1", expires_ms=now() + 60_000,
                                     now_ms=now())
    await store.logins.count_failure("carol", "a", window_ms=60_000)


async def test_data_written_by_the_store_is_consistent(store: Store) -> None:
    await populated(store)
    assert await check(store) == []
    assert await store.delete_account("bob", gen="g1")
    assert await check(store) == []


async def test_expired_token_in_an_expiring_hash_is_prunable_not_a_violation(
    store: Store
) -> None:
    await populated(store)
    assert await check(store, now_ms=now() + 120_000) == []


async def test_each_kind_of_inconsistency_is_reported(store: Store, redis: Redis) -> None:
    await populated(store)
    await redis.zrem(keys.USERS, "alice")
    await redis.zadd(keys.USERS, {"ghost": 0})
    await redis.hset(keys.tokens("gone"), "f" * 64, "1")
    await redis.xadd(keys.inbox("bob"), {"msg_id": "m2", "from": "alice", "to": "eve",
                                         "body": "x", "ts": "1"})
    await redis.persist(keys.tokens("bob"))
    await redis.hset(keys.seen("bob"), "x:y", "1 1-1")
    await redis.persist(keys.login_failures_from("a"))
    await redis.hset(keys.account("nopw"), "gen", "g")
    await redis.zadd(keys.USERS, {"nopw": 0})
    problems = "\n".join(await check(store))
    for expected in ("'alice' is not in", "lists 'ghost'", "tokens key of 'gone'",
                     "addressed to 'eve'", "tokens of 'bob' never expire",
                     "legacy dedupe key", "has no expiry", "'nopw' has no password hash"):
        assert expected in problems, problems
