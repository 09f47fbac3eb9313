"""server/store.py against fakeredis: register, account lookups, list_users, delete_account."""

from __future__ import annotations

from redis.asyncio import Redis

from server import keys
from server.store import Store
from tests.unit.store_helpers import now, register, send

# Accounts ---------------------------------------------------------------------------

async def test_register_creates_the_account_and_lists_the_name(store: Store) -> None:
    assert await store.register("alice", "argon-hash", gen="g1", now_ms=123)
    account = await store.account("alice")
    assert account is not None
    assert (account.name, account.password_hash, account.gen) == ("alice", "argon-hash", "g1")
    assert await store.list_users(start_after=None, prefix="", count=10) == ["alice"]


async def test_register_refuses_a_taken_name_and_keeps_the_first_account(store: Store) -> None:
    assert await store.register("alice", "first", gen="g1", now_ms=1)
    assert not await store.register("alice", "second", gen="g2", now_ms=2)
    account = await store.account("alice")
    assert account is not None
    assert (account.password_hash, account.gen) == ("first", "g1")
    assert await store.list_users(start_after=None, prefix="", count=10) == ["alice"]


async def test_account_of_unknown_name_is_none(store: Store) -> None:
    assert await store.account("nobody") is None


async def test_account_gens_gives_none_for_missing_accounts(store: Store) -> None:
    await register(store, "alice", gen="ga")
    assert await store.account_gens(["alice", "ghost"]) == {"alice": "ga", "ghost": None}


async def test_list_users_is_sorted_and_pages_after_start_after(store: Store) -> None:
    await register(store, "carol", "alice", "bob", "dave")
    first = await store.list_users(start_after=None, prefix="", count=2)
    assert first == ["alice", "bob"]
    assert await store.list_users(start_after="bob", prefix="", count=2) == ["carol", "dave"]
    assert await store.list_users(start_after="dave", prefix="", count=2) == []


async def test_list_users_keeps_to_the_prefix(store: Store) -> None:
    await register(store, "al", "al.x", "al_y", "alb", "alice", "ak", "am", "b")
    assert await store.list_users(start_after=None, prefix="al", count=100) == [
        "al", "al.x", "al_y", "alb", "alice"]
    assert await store.list_users(start_after="al_y", prefix="al", count=100) == ["alb", "alice"]


async def test_list_users_start_after_before_the_prefix_starts_at_the_prefix(store: Store) -> None:
    await register(store, "aaa", "bob", "bobby", "carl")
    assert await store.list_users(start_after="aaa", prefix="bob", count=10) == ["bob", "bobby"]


async def test_list_users_start_after_past_the_prefix_is_empty(store: Store) -> None:
    await register(store, "bob", "bobby", "carl")
    assert await store.list_users(start_after="c", prefix="bob", count=10) == []


async def test_list_users_prefix_with_no_names_is_empty(store: Store) -> None:
    await register(store, "bob")
    assert await store.list_users(start_after=None, prefix="[b", count=10) == []
    assert await store.list_users(start_after=None, prefix="é", count=10) == []


async def test_paging_by_prefix_visits_every_name_once(store: Store) -> None:
    names = [f"u{i:02d}" for i in range(23)] + ["t1", "v1", "u", "u.z"]
    await register(store, *names)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await store.list_users(start_after=after, prefix="u", count=4)
        if not page:
            break
        seen += page
        after = page[-1]
    assert seen == sorted(n for n in names if n.startswith("u"))


# delete_account ---------------------------------------------------------------------

async def test_delete_account_removes_account_inbox_tokens_dedupe_and_name(
        store: Store, redis: Redis) -> None:
    await register(store, "alice", "bob", gen="g1")
    await send(store, sender="alice", to="bob", msg_id="m1")
    t0 = now()
    await store.sessions.issue_token("bob", "tb", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.delete_account("bob", gen="g1")
    assert await store.account("bob") is None
    assert await store.unread("bob") == 0
    assert await store.sessions.token_session("bob", "tb", now_ms=t0) is None
    assert await store.list_users(start_after=None, prefix="", count=10) == ["alice"]
    for key in (keys.account("bob"), keys.inbox("bob"), keys.seen("bob"),
                keys.seen_expiry("bob"), keys.tokens("bob")):
        assert not await redis.exists(key), key


async def test_delete_account_refuses_a_generation_mismatch(store: Store) -> None:
    await register(store, "bob", gen="g1")
    await send(store)
    assert not await store.delete_account("bob", gen="other")
    assert await store.account("bob") is not None
    assert await store.unread("bob") == 1
    assert await store.list_users(start_after=None, prefix="", count=10) == ["bob"]


async def test_delete_account_of_a_missing_account_does_nothing(store: Store) -> None:
    await register(store, "alice")
    assert not await store.delete_account("ghost", gen="")
    assert await store.list_users(start_after=None, prefix="", count=10) == ["alice"]


async def test_messages_a_deleted_user_sent_stay_in_their_recipients_inboxes(
        store: Store) -> None:
    await register(store, "alice", "bob")
    await send(store, sender="alice", to="bob")
    assert await store.delete_account("alice", gen="g1")
    messages, _ = await store.fetch("bob", limit=10)
    assert [m["from"] for m in messages] == ["alice"]


async def test_a_deleted_name_registers_again_clean(store: Store) -> None:
    await register(store, "bob", gen="g1")
    first = await send(store, msg_id="m1")
    t0 = now()
    await store.sessions.issue_token("bob", "old", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.delete_account("bob", gen="g1")
    assert await store.register("bob", "new-hash", gen="g2", now_ms=t0)
    account = await store.account("bob")
    assert account is not None and (account.password_hash, account.gen) == ("new-hash", "g2")
    assert await store.fetch("bob", limit=10) == ([], 0)
    assert await store.sessions.token_session("bob", "old", now_ms=t0) is None
    # The old dedupe record went with the old account: the same msg_id is a new message.
    again = await store.send(sender="alice", to="bob", body="hi", msg_id="m1", now_ms=2)
    assert again.prev == "0-0" and again.seq != first
    assert await store.unread("bob") == 1
    assert await store.list_users(start_after=None, prefix="", count=10) == ["bob"]
