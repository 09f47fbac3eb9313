"""server/store.py against fakeredis: session tokens and the login-failure counter."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server import keys
from server.store import Store
from tests.unit.store_helpers import now, register

# Sessions ---------------------------------------------------------------------------

async def test_issued_token_gives_the_account_generation_until_it_expires(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await store.issue_token("alice", "th", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.token_session("alice", "th", now_ms=t0) == "g1"
    assert await store.token_session("alice", "th", now_ms=t0 + 59_999) == "g1"
    assert await store.token_session("alice", "th", now_ms=t0 + 60_000) is None


async def test_unknown_token_has_no_session(store: Store) -> None:
    await register(store, "alice")
    assert await store.token_session("alice", "nope", now_ms=now()) is None
    assert await store.token_session("ghost", "nope", now_ms=now()) is None


async def test_revoked_token_has_no_session_and_others_stay(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for th in ("t1", "t2"):
        assert await store.issue_token("alice", th, gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    await store.revoke_token("alice", "t1")
    assert await store.token_session("alice", "t1", now_ms=t0) is None
    assert await store.token_session("alice", "t2", now_ms=t0) == "g1"


async def test_issue_token_prunes_expired_tokens(store: Store, redis: Redis) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await store.issue_token("alice", "old", gen="g1", expires_ms=t0 + 1000, now_ms=t0)
    assert await store.issue_token("alice", "new", gen="g1", expires_ms=t0 + 90_000,
                                   now_ms=t0 + 1000)
    assert await redis.hkeys(keys.tokens("alice")) == ["new"]


async def test_token_hash_expires_with_its_newest_token(store: Store, redis: Redis) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await store.issue_token("alice", "t", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    ttl = await redis.pttl(keys.tokens("alice"))
    assert 50_000 < ttl <= 60_000


async def test_issue_token_refuses_a_recreated_account(store: Store) -> None:
    await register(store, "alice", gen="g1")
    assert await store.delete_account("alice", gen="g1")
    await register(store, "alice", gen="g2")
    t0 = now()
    assert not await store.issue_token("alice", "t", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.token_session("alice", "t", now_ms=t0) is None


async def test_issue_token_refuses_a_missing_account(store: Store) -> None:
    t0 = now()
    assert not await store.issue_token("ghost", "t", gen="", expires_ms=t0 + 60_000, now_ms=t0)


async def test_login_failures_count_within_the_window(store: Store) -> None:
    assert await store.login_failures("alice", "10.0.0.1") == 0
    counts = [await store.record_login_failure("alice", "10.0.0.1", window_ms=60_000)
              for _ in range(3)]
    assert counts == [1, 2, 3]
    assert await store.login_failures("alice", "10.0.0.1") == 3
    assert await store.login_failures("alice", "10.0.0.2") == 0
    assert await store.login_failures("bob", "10.0.0.1") == 0


async def test_login_failure_window_starts_at_the_first_failure(store: Store,
                                                                redis: Redis) -> None:
    await store.record_login_failure("alice", "a", window_ms=60_000)
    await store.record_login_failure("alice", "a", window_ms=60_000)
    ttl = await redis.pttl(keys.login_failures("alice", "a"))
    assert 0 < ttl <= 60_000
    await redis.pexpire(keys.login_failures("alice", "a"), 1_000_000)
    await store.record_login_failure("alice", "a", window_ms=60_000)
    assert await redis.pttl(keys.login_failures("alice", "a")) > 60_000  # not pushed back


async def test_login_failure_count_resets_after_the_window(store: Store) -> None:
    await store.record_login_failure("alice", "a", window_ms=40)
    await store.record_login_failure("alice", "a", window_ms=40)
    await asyncio.sleep(0.08)
    assert await store.login_failures("alice", "a") == 0
    assert await store.record_login_failure("alice", "a", window_ms=40) == 1
