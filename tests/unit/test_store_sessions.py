"""server/store.py against fakeredis: session tokens and the login-failure counter."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server import keys
from server.data.sessions import RECORDS_PER_SESSION, Revoked
from server.store import Store
from tests.unit.store_helpers import now, register


async def issued(store: Store, name: str, token_hash: str, *, gen: str, expires_ms: int,
                 now_ms: int) -> bool:
    """Whether issue_token recorded the token (None: no such account generation)."""
    return await store.sessions.issue_token(name, token_hash, gen=gen, expires_ms=expires_ms,
                                            now_ms=now_ms) is not None


# Sessions ---------------------------------------------------------------------------

async def test_issued_token_gives_the_account_generation_until_it_expires(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await issued(store, "alice", "th", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.sessions.token_session("alice", "th", now_ms=t0) == "g1"
    assert await store.sessions.token_session("alice", "th", now_ms=t0 + 59_999) == "g1"
    assert await store.sessions.token_session("alice", "th", now_ms=t0 + 60_000) is None


async def test_unknown_token_has_no_session(store: Store) -> None:
    await register(store, "alice")
    assert await store.sessions.token_session("alice", "nope", now_ms=now()) is None
    assert await store.sessions.token_session("ghost", "nope", now_ms=now()) is None


async def test_revoked_token_has_no_session_and_others_stay(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for th in ("t1", "t2"):
        assert await issued(store, "alice", th, gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    await store.sessions.revoke_token("alice", "t1")
    assert await store.sessions.token_session("alice", "t1", now_ms=t0) is None
    assert await store.sessions.token_session("alice", "t2", now_ms=t0) == "g1"


async def test_issue_token_prunes_expired_tokens(store: Store, redis: Redis) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await issued(store, "alice", "old", gen="g1", expires_ms=t0 + 1000, now_ms=t0)
    assert await issued(store, "alice", "new", gen="g1", expires_ms=t0 + 90_000,
                                   now_ms=t0 + 1000)
    assert await redis.hkeys(keys.tokens("alice")) == ["new"]


async def test_token_hash_expires_with_its_newest_token(store: Store, redis: Redis) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    assert await issued(store, "alice", "t", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    ttl = await redis.pttl(keys.tokens("alice"))
    assert 50_000 < ttl <= 60_000


async def test_issue_token_refuses_a_recreated_account(store: Store) -> None:
    await register(store, "alice", gen="g1")
    assert await store.delete_account("alice", gen="g1")
    await register(store, "alice", gen="g2")
    t0 = now()
    assert not await issued(store, "alice", "t", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.sessions.token_session("alice", "t", now_ms=t0) is None


async def test_issue_token_refuses_a_missing_account(store: Store) -> None:
    t0 = now()
    assert not await issued(store, "ghost", "t", gen="", expires_ms=t0 + 60_000, now_ms=t0)


async def test_login_failure_window_starts_at_the_first_failure(store: Store,
                                                                redis: Redis) -> None:
    await store.logins.count_failure("alice", "a", window_ms=60_000)
    await store.logins.count_failure("alice", "a", window_ms=60_000)
    ttl = await redis.pttl(keys.login_failures("alice", "a"))
    assert 0 < ttl <= 60_000
    await redis.pexpire(keys.login_failures("alice", "a"), 1_000_000)
    await store.logins.count_failure("alice", "a", window_ms=60_000)
    assert await redis.pttl(keys.login_failures("alice", "a")) > 60_000  # not pushed back


async def test_login_failure_count_resets_after_the_window(store: Store) -> None:
    await store.logins.count_failure("alice", "a", window_ms=40)
    await store.logins.count_failure("alice", "a", window_ms=40)
    await asyncio.sleep(0.08)
    assert await store.logins.counts("alice", "a") == (0, 0, 0)
    assert await store.logins.count_failure("alice", "a", window_ms=40) == (1, 1, 1)


# Revocation -------------------------------------------------------------------------

async def test_a_login_beyond_the_cap_revokes_the_oldest_token_as_replaced(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for i in range(3):
        replaced = await store.sessions.issue_token("alice", f"t{i}", gen="g1",
                                                    expires_ms=t0 + 60_000 + i, now_ms=t0,
                                                    max_sessions=3)
        assert replaced == []
    replaced = await store.sessions.issue_token("alice", "t3", gen="g1", expires_ms=t0 + 60_003,
                                                now_ms=t0, max_sessions=3)
    assert replaced == [Revoked("t0", "replaced")]
    assert await store.sessions.token_session("alice", "t0", now_ms=t0) is None
    assert await store.sessions.token_session("alice", "t1", now_ms=t0) == "g1"
    assert await store.sessions.ended_sessions([("alice", "t0"), ("alice", "t1")], now_ms=t0) \
        == {("alice", "t0"): "replaced"}


async def test_revoking_one_token_keeps_its_reason_and_the_others_live(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for th in ("t1", "t2"):
        await store.sessions.issue_token("alice", th, gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    revoked = await store.sessions.revoke_tokens("alice", gen="g1", now_ms=t0, reason="logout",
                                                 token_hash="t1")
    assert revoked == [Revoked("t1", "logout")]
    assert await store.sessions.ended_sessions([("alice", "t1"), ("alice", "t2")], now_ms=t0) \
        == {("alice", "t1"): "logout"}


async def test_revoking_every_token_ends_them_all(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for th in ("t1", "t2"):
        await store.sessions.issue_token("alice", th, gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    revoked = await store.sessions.revoke_tokens("alice", gen="g1", now_ms=t0, reason="logout")
    assert sorted(r.token_hash for r in revoked) == ["t1", "t2"]
    assert await store.sessions.token_session("alice", "t2", now_ms=t0) is None


async def test_revocation_records_live_as_long_as_the_token_would_have(
    store: Store, redis: Redis
) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    await store.sessions.issue_token("alice", "t1", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    await store.sessions.revoke_tokens("alice", gen="g1", now_ms=t0, reason="logout",
                                       token_hash="t1")
    assert 50_000 < await redis.pttl(keys.revoked("alice")) <= 60_000


async def test_revocation_records_are_bounded_per_allowed_session(
    store: Store, redis: Redis
) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for i in range(40):
        await store.sessions.issue_token("alice", f"t{i}", gen="g1", expires_ms=t0 + 60_000 + i,
                                         now_ms=t0, max_sessions=2)
    assert len(await redis.hkeys(keys.revoked("alice"))) == 2 * RECORDS_PER_SESSION


async def test_an_expired_token_ends_as_expired(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    await store.sessions.issue_token("alice", "t1", gen="g1", expires_ms=t0 + 1000, now_ms=t0)
    assert await store.sessions.ended_sessions([("alice", "t1")], now_ms=t0) == {}
    assert await store.sessions.ended_sessions([("alice", "t1")], now_ms=t0 + 1000) \
        == {("alice", "t1"): "expired"}


async def test_change_password_sets_the_hash_and_ends_every_other_token(store: Store) -> None:
    await register(store, "alice", gen="g1")
    t0 = now()
    for th in ("t1", "t2"):
        await store.sessions.issue_token("alice", th, gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    revoked = await store.sessions.change_password(
        "alice", gen="g1", password_hash="new-hash", token_hash="t3", expires_ms=t0 + 60_000,
        now_ms=t0)
    assert revoked is not None
    assert sorted(r.token_hash for r in revoked) == ["t1", "t2"]
    assert {r.reason for r in revoked} == {"password_changed"}
    assert await store.sessions.token_session("alice", "t3", now_ms=t0) == "g1"
    account = await store.account("alice")
    assert account is not None and account.password_hash == "new-hash"


async def test_change_password_of_a_recreated_account_changes_nothing(store: Store) -> None:
    await register(store, "alice", gen="g2")
    t0 = now()
    assert await store.sessions.change_password(
        "alice", gen="g1", password_hash="new-hash", token_hash="t3", expires_ms=t0 + 60_000,
        now_ms=t0) is None
    account = await store.account("alice")
    assert account is not None and account.password_hash == "hash-of-alice"


async def test_failures_for_one_name_count_over_every_address(store: Store) -> None:
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        await store.logins.count_failure("alice", address, window_ms=60_000)
    assert (await store.logins.counts("alice", "10.0.0.9")).by_user == 3
    assert (await store.logins.counts("bob", "10.0.0.1")).by_user == 0
