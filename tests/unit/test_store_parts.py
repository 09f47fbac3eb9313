"""Store is composed, not inherited: each part stands alone with only what it is built with."""

from __future__ import annotations

import fakeredis
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from server import keys
from server.data.audit import Audit
from server.data.commit import GroupCommitter
from server.data.dedupe import Dedupe
from server.data.logins import Logins
from server.data.sessions import Sessions
from server.store import SCRIPTS, Store
from tests.unit.store_helpers import now, register


def script(redis: Redis, name: str) -> AsyncScript:
    return redis.register_script((SCRIPTS / f"{name}.lua").read_text())


def test_store_inherits_nothing_and_owns_one_of_each_part(store: Store) -> None:
    assert Store.__mro__ == (Store, object)
    assert isinstance(store.sessions, Sessions)
    assert isinstance(store.logins, Logins)
    assert isinstance(store.dedupe, Dedupe)
    assert isinstance(store.audit, Audit)


async def test_logins_count_failures_with_only_redis_and_their_script(redis: Redis) -> None:
    logins = Logins(redis, script(redis, "login_failed"))
    await logins.count_failure("alice", "10.0.0.1", window_ms=60_000)
    assert await logins.counts("alice", "10.0.0.1") == (1, 1, 1)


async def test_sessions_issue_and_read_a_token_with_redis_committer_and_script(
        store: Store, redis: Redis, committer: GroupCommitter) -> None:
    await register(store, "alice", gen="g1")
    sessions = Sessions(redis, committer, script(redis, "sessions"))
    t0 = now()
    assert await sessions.issue_token("alice", "th", gen="g1", expires_ms=t0 + 60_000,
                                      now_ms=t0) == []
    assert await sessions.token_session("alice", "th", now_ms=t0) == "g1"


async def test_dedupe_built_with_a_layout_never_asks_redis(
        redis: Redis, fake_server: fakeredis.FakeServer) -> None:
    dedupe = Dedupe(redis, window_ms=60_000, layout="generations")
    fake_server.connected = False  # any Redis call would fail now
    call_keys, settings = await dedupe.for_send("bob", 125_000)
    assert call_keys == [keys.dedupe_generation("bob", 2), keys.dedupe_generation("bob", 1)]
    assert settings[0] == "generations"


async def test_audit_reads_what_the_store_wrote(store: Store, redis: Redis) -> None:
    await register(store, "alice", "bob")
    audit = Audit(redis)
    assert await audit.listed_users() == {"alice", "bob"}
    assert keys.account("alice") in await audit.scan_keys(f"{keys.PREFIX}:*")
