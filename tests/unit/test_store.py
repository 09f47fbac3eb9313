"""server/store.py (and its Lua scripts and group committer) against fakeredis."""

from __future__ import annotations

import asyncio
import time

import fakeredis
import pytest
from redis.asyncio import Redis

from server import errors, keys
from server.commit import GroupCommitter
from server.store import DEDUPE_MS, MAX_STREAM_INT, Store, next_seq
from tests.unit.conftest import MAX_INBOX

BIG = str(MAX_STREAM_INT)


def now() -> int:
    return int(time.time() * 1000)


async def register(store: Store, *names: str, gen: str = "g1") -> None:
    for name in names:
        assert await store.register(name, f"hash-of-{name}", gen=gen, now_ms=now())


async def send(store: Store, body: str = "hi", *, sender: str = "alice", to: str = "bob",
               msg_id: str = "m1", ts: int = 1000) -> str:
    return (await store.send(sender=sender, to=to, body=body, msg_id=msg_id, now_ms=ts)).seq


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


# Messages ---------------------------------------------------------------------------

async def test_send_stores_the_message_and_returns_ts_seq_and_prev(store: Store) -> None:
    await register(store, "bob")
    result = await store.send(sender="alice", to="bob", body="hello", msg_id="m1", now_ms=4242)
    assert result.ts == 4242
    assert result.prev == "0-0"
    messages, left = await store.fetch("bob", limit=10)
    assert messages == [{"msg_id": "m1", "from": "alice", "to": "bob", "body": "hello",
                         "ts": 4242, "seq": result.seq}]
    assert left == 0


async def test_prev_is_the_entry_before_the_new_one(store: Store) -> None:
    await register(store, "bob")
    first = await send(store, msg_id="m1")
    second = await store.send(sender="carol", to="bob", body="x", msg_id="m2", now_ms=1)
    assert second.prev == first


async def test_concurrent_sends_all_land_with_a_prev_chain(store: Store) -> None:
    big = Store(store.redis, store._committer, max_inbox=100)
    await register(big, "bob")
    results = await asyncio.gather(*(
        big.send(sender="alice", to="bob", body=str(i), msg_id=f"m{i}", now_ms=i)
        for i in range(40)))
    messages, _ = await big.fetch("bob", limit=100)
    seqs = [m["seq"] for m in messages]
    assert len(seqs) == 40 == len(set(seqs))
    by_seq = {r.seq: r.prev for r in results}
    assert [by_seq[s] for s in seqs] == ["0-0", *seqs[:-1]]


async def test_resend_with_same_sender_and_msg_id_returns_the_first_ts_and_seq(
        store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="first", msg_id="m1", now_ms=100)
    retry = await store.send(sender="alice", to="bob", body="second", msg_id="m1", now_ms=200)
    assert (retry.ts, retry.seq, retry.prev) == (100, first.seq, None)
    messages, _ = await store.fetch("bob", limit=10)
    assert [(m["body"], m["ts"]) for m in messages] == [("first", 100)]


async def test_resend_after_ack_still_returns_the_first_send(store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=100)
    assert await store.ack("bob", first.seq) == 1
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=300)
    assert (retry.ts, retry.seq) == (100, first.seq)
    assert await store.unread("bob") == 0


async def test_different_senders_with_the_same_msg_id_store_two_messages(store: Store) -> None:
    await register(store, "bob")
    a = await store.send(sender="alice", to="bob", body="from a", msg_id="same", now_ms=1)
    c = await store.send(sender="carol", to="bob", body="from c", msg_id="same", now_ms=2)
    assert a.seq != c.seq
    messages, _ = await store.fetch("bob", limit=10)
    assert [(m["from"], m["body"]) for m in messages] == [("alice", "from a"), ("carol", "from c")]


async def test_same_msg_id_to_different_recipients_stores_one_each(store: Store) -> None:
    await register(store, "bob", "carol")
    await send(store, to="bob", msg_id="m1")
    await send(store, to="carol", msg_id="m1")
    assert (await store.unread("bob"), await store.unread("carol")) == (1, 1)


async def test_send_to_self_is_stored(store: Store) -> None:
    await register(store, "alice")
    await send(store, sender="alice", to="alice")
    assert await store.unread("alice") == 1


async def test_dedupe_holds_for_the_whole_dedupe_lifetime(store: Store) -> None:
    await register(store, "bob")
    first = await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1000)
    # Another send just before the record expires prunes nothing.
    await store.send(sender="carol", to="bob", body="y", msg_id="m2",
                     now_ms=1000 + DEDUPE_MS - 1)
    retry = await store.send(sender="alice", to="bob", body="x", msg_id="m1",
                             now_ms=1000 + DEDUPE_MS - 1)
    assert retry.seq == first.seq
    assert await store.unread("bob") == 2


async def test_expired_dedupe_records_are_pruned_by_later_sends(store: Store,
                                                                redis: Redis) -> None:
    await register(store, "bob")
    await store.send(sender="alice", to="bob", body="x", msg_id="m1", now_ms=1000)
    await store.send(sender="carol", to="bob", body="y", msg_id="m2", now_ms=1000 + DEDUPE_MS)
    assert await redis.hkeys(keys.seen("bob")) == ["carol:m2"]
    assert await redis.zrange(keys.seen_expiry("bob"), 0, -1) == ["carol:m2"]


async def test_send_to_unknown_user_raises_no_such_user(store: Store) -> None:
    with pytest.raises(errors.NoSuchUser):
        await send(store, to="ghost")
    assert await store.unread("ghost") == 0


async def test_full_inbox_gives_too_large(store: Store) -> None:
    await register(store, "bob")
    for i in range(MAX_INBOX):
        await send(store, msg_id=f"m{i}")
    with pytest.raises(errors.TooLarge):
        await send(store, msg_id="one-more")
    assert await store.unread("bob") == MAX_INBOX


async def test_retry_into_a_full_inbox_is_still_answered_as_the_first_send(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(MAX_INBOX)]
    retry = await store.send(sender="alice", to="bob", body="hi", msg_id="m0", now_ms=1)
    assert retry.seq == seqs[0]


async def test_ack_makes_room_in_a_full_inbox(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(MAX_INBOX)]
    await store.ack("bob", seqs[0])
    await send(store, msg_id="one-more")
    assert await store.unread("bob") == MAX_INBOX


async def test_fetch_is_oldest_first_and_does_not_remove(store: Store) -> None:
    await register(store, "bob")
    for i in range(4):
        await send(store, f"body {i}", msg_id=f"m{i}", ts=i)
    page, left = await store.fetch("bob", limit=3)
    assert [m["body"] for m in page] == ["body 0", "body 1", "body 2"]
    assert left == 1
    again, _ = await store.fetch("bob", limit=10)
    assert [m["body"] for m in again] == ["body 0", "body 1", "body 2", "body 3"]
    assert await store.unread("bob") == 4


async def test_fetch_of_an_empty_inbox_is_empty(store: Store) -> None:
    assert await store.fetch("bob", limit=10) == ([], 0)


async def test_ack_is_cumulative_and_returns_how_many_went(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, msg_id=f"m{i}") for i in range(4)]
    assert await store.ack("bob", seqs[2]) == 3
    page, left = await store.fetch("bob", limit=10)
    assert [m["seq"] for m in page] == [seqs[3]]
    assert left == 0
    assert await store.ack("bob", seqs[2]) == 0
    assert await store.ack("bob", seqs[3]) == 1
    assert await store.unread("bob") == 0


async def test_ack_of_a_seq_older_than_the_inbox_removes_nothing(store: Store) -> None:
    await register(store, "bob")
    await send(store)
    assert await store.ack("bob", "0-0") == 0
    assert await store.ack("bob", "1-0") == 0
    assert await store.unread("bob") == 1


async def test_ack_of_a_seq_between_entries_removes_the_older_ones(store: Store,
                                                                  redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in ("5-1", "5-3", "7-0"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", "5-2") == 1
    assert [m["seq"] for m in (await store.fetch("bob", limit=10))[0]] == ["5-3", "7-0"]


async def test_ack_of_a_counter_at_the_stream_maximum_moves_to_the_next_ms(
        store: Store, redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in (f"5-{BIG}", "6-0"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", f"5-{BIG}") == 1
    assert [m["seq"] for m in (await store.fetch("bob", limit=10))[0]] == ["6-0"]


async def test_ack_of_the_largest_stream_id_empties_the_inbox(store: Store, redis: Redis) -> None:
    inbox = keys.inbox("bob")
    for eid in ("1-0", f"{BIG}-{BIG}"):
        await redis.xadd(inbox, {"msg_id": "m", "from": "a", "to": "bob", "body": "b", "ts": "1"},
                         id=eid)
    assert await store.ack("bob", f"{BIG}-{BIG}") == 2
    assert await store.unread("bob") == 0


async def test_ack_of_a_malformed_seq_is_bad_request(store: Store) -> None:
    with pytest.raises(errors.BadRequest):
        await store.ack("bob", "not-a-seq")


@pytest.mark.parametrize("seq", [f"{MAX_STREAM_INT + 1}-0", f"0-{MAX_STREAM_INT + 1}",
                                 "99999999999999999999-99999999999999999999"])
async def test_ack_of_a_seq_beyond_the_largest_stream_id_is_bad_request(
    store: Store, seq: str
) -> None:
    # Twenty digits pass the shape check but no stream id is that large:
    # Redis rejects it, and that must not read as `unavailable` (retry).
    await register(store, "bob")
    await send(store)
    with pytest.raises(errors.BadRequest):
        await store.ack("bob", seq)
    assert await store.unread("bob") == 1


def test_next_seq_increments_the_counter() -> None:
    assert next_seq("0-0") == "0-1"
    assert next_seq("1700000000000-41") == "1700000000000-42"


def test_next_seq_after_the_largest_counter_is_the_next_millisecond() -> None:
    assert next_seq(f"5-{BIG}") == "6-0"
    assert next_seq(f"{MAX_STREAM_INT - 1}-{BIG}") == f"{BIG}-0"


def test_next_seq_after_the_largest_stream_id_is_none() -> None:
    assert next_seq(f"{BIG}-{BIG}") is None


def test_next_seq_of_a_malformed_seq_is_bad_request() -> None:
    with pytest.raises(errors.BadRequest):
        next_seq("5")


async def test_inbox_tails_give_the_newest_seq_or_zero(store: Store) -> None:
    await register(store, "bob", "carol")
    await send(store, msg_id="m1")
    newest = await send(store, msg_id="m2")
    assert await store.inbox_tails(["bob", "carol", "ghost"]) == {
        "bob": newest, "carol": "0-0", "ghost": "0-0"}


async def test_inbox_tails_of_no_names_is_empty(store: Store) -> None:
    assert await store.inbox_tails([]) == {}


async def test_read_range_gives_messages_after_a_seq_up_to_another(store: Store) -> None:
    await register(store, "bob")
    seqs = [await send(store, f"b{i}", msg_id=f"m{i}") for i in range(4)]
    assert [m["body"] for m in await store.read_range("bob", after="0-0")] == [
        "b0", "b1", "b2", "b3"]
    assert [m["seq"] for m in await store.read_range("bob", after=seqs[0])] == seqs[1:]
    assert [m["seq"] for m in await store.read_range("bob", after=seqs[0], upto=seqs[2])] == (
        seqs[1:3])
    assert [m["seq"] for m in await store.read_range("bob", after="0-0", count=2)] == seqs[:2]
    assert await store.read_range("bob", after=seqs[3]) == []


# delete_account ---------------------------------------------------------------------

async def test_delete_account_removes_account_inbox_tokens_dedupe_and_name(
        store: Store, redis: Redis) -> None:
    await register(store, "alice", "bob", gen="g1")
    await send(store, sender="alice", to="bob", msg_id="m1")
    t0 = now()
    await store.issue_token("bob", "tb", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.delete_account("bob", gen="g1")
    assert await store.account("bob") is None
    assert await store.unread("bob") == 0
    assert await store.token_session("bob", "tb", now_ms=t0) is None
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
    await store.issue_token("bob", "old", gen="g1", expires_ms=t0 + 60_000, now_ms=t0)
    assert await store.delete_account("bob", gen="g1")
    assert await store.register("bob", "new-hash", gen="g2", now_ms=t0)
    account = await store.account("bob")
    assert account is not None and (account.password_hash, account.gen) == ("new-hash", "g2")
    assert await store.fetch("bob", limit=10) == ([], 0)
    assert await store.token_session("bob", "old", now_ms=t0) is None
    # The old dedupe record went with the old account: the same msg_id is a new message.
    again = await store.send(sender="alice", to="bob", body="hi", msg_id="m1", now_ms=2)
    assert again.prev == "0-0" and again.seq != first
    assert await store.unread("bob") == 1
    assert await store.list_users(start_after=None, prefix="", count=10) == ["bob"]


# Failures -----------------------------------------------------------------------------

async def test_required_replicas_unavailable_makes_run_raise_unavailable(redis: Redis) -> None:
    def no_topology() -> int:
        raise errors.Unavailable("no primary known")

    committer = GroupCommitter(redis, required_replicas=no_topology, ack_timeout_ms=1000)
    committer.start()
    try:
        store = Store(redis, committer, max_inbox=MAX_INBOX)
        with pytest.raises(errors.Unavailable, match="no primary known"):
            await store.register("alice", "h", gen="g1", now_ms=1)
        assert await store.account("alice") is None
    finally:
        await committer.close()


async def test_committer_that_is_not_started_is_unavailable(redis: Redis) -> None:
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    store = Store(redis, committer, max_inbox=MAX_INBOX)
    with pytest.raises(errors.Unavailable):
        await store.register("alice", "h", gen="g1", now_ms=1)


async def test_committer_close_is_idempotent_and_later_writes_are_unavailable(
        redis: Redis) -> None:
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    committer.start()
    await committer.close()
    await committer.close()
    with pytest.raises(errors.Unavailable):
        await Store(redis, committer, max_inbox=1).register("a", "h", gen="g", now_ms=1)


async def test_unreachable_redis_is_unavailable(store: Store,
                                                fake_server: fakeredis.FakeServer) -> None:
    await register(store, "bob")
    fake_server.connected = False
    with pytest.raises(errors.Unavailable):
        await store.unread("bob")
    with pytest.raises(errors.Unavailable):
        await send(store)
    with pytest.raises(errors.Unavailable):
        await store.fetch("bob", limit=1)
    fake_server.connected = True
    assert await store.unread("bob") == 0


async def test_a_failing_script_is_internal_and_other_writes_go_on(store: Store,
                                                                   redis: Redis) -> None:
    await register(store, "bob", "carol")
    await redis.delete(keys.inbox("bob"))
    await redis.set(keys.inbox("bob"), "not a stream")
    bad, good = await asyncio.gather(send(store, to="bob"), send(store, to="carol"),
                                     return_exceptions=True)
    assert isinstance(bad, errors.Internal)
    assert isinstance(good, str)
    assert await store.unread("carol") == 1


# Pub/sub and health -------------------------------------------------------------------

async def test_publish_reaches_subscribers_of_the_users_channel(store: Store,
                                                                redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.channel("bob"), keys.instance_channel("i1"))
    try:
        await store.publish("bob", b'{"event": "x"}')
        await store.publish_raw(keys.instance_channel("i1"), b"ping")
        got: list[tuple[str, str]] = []
        for _ in range(50):
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is not None:
                got.append((msg["channel"], msg["data"]))
            if len(got) == 2:
                break
        assert got == [(keys.channel("bob"), '{"event": "x"}'),
                       (keys.instance_channel("i1"), "ping")]
        assert keys.user_of_channel(got[0][0]) == "bob"
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_ping_succeeds_when_reachable_and_is_unavailable_when_not(
        store: Store, fake_server: fakeredis.FakeServer) -> None:
    await store.ping()
    fake_server.connected = False
    with pytest.raises(errors.Unavailable):
        await store.ping()

