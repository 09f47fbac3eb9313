"""Check that the chat's data in Redis is consistent: `python -m server.invariants`.

Run after fuzzing, chaos or a restore. Every multi-key write is one Lua
script, so none of these can break unless a script (or an operator) is
wrong; the checker is how tests prove that. It only reads, through Store.

On a Redis Cluster (--cluster-nodes) every primary is scanned, and the
directory steps a crash left pending are completed first (a register or
delete between its two steps): what remains is a real violation, as is a
name still in a slot's pending set (data/directory.py).

Exit status 0 when every check holds, 1 listing each violation, 2 when
Redis cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis

from server import keys
from server.data.cluster_commit import ClusterWrites
from server.data.commit import GroupCommitter
from server.settings import Settings
from server.storage import redis_conn
from server.storage.cluster_topology import ClusterTopology
from server.storage.redis_conn import read_password
from server.store import Store
from server.wire import arguments, errors

#: Kinds of per-user key that may only exist while the account does.
OWNED_BY_ACCOUNT = ("inbox", "ledger", "dedupe", "seen", "seen-exp", "tokens", "revoked")
#: How far in the future a token may expire (a token_ttl_s larger than this
#: would be a misconfiguration, and a corrupt expiry would show up here).
MAX_TOKEN_LIFETIME_MS = 366 * 24 * 3600 * 1000


async def check(store: Store, *, now_ms: int | None = None) -> list[str]:
    """Every violation found, as one readable line each (empty: consistent)."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    problems: list[str] = []
    by_kind: dict[str, set[str]] = defaultdict(set)
    counters: list[str] = []
    dedupe: list[str] = []
    legacy: list[str] = []
    for key in await store.audit.scan_keys(f"{keys.PREFIX}:*"):
        owner = keys.owner_of(key)
        if owner is not None:
            by_kind[owner[1]].add(owner[0])
            if owner[1] in ("login-fail", "login-fail-all"):
                counters.append(key)
            elif owner[1] == "dedupe":
                dedupe.append(key)
            elif owner[1] in ("seen", "seen-exp"):
                legacy.append(key)
        elif key.startswith(keys.LOGIN_FAILURES_FROM):
            counters.append(key)
    accounts = by_kind["account"]
    listed = await store.audit.listed_users()
    problems += [f"account {n!r} is not in {keys.USERS}" for n in sorted(accounts - listed)]
    problems += [f"{keys.USERS} lists {n!r} without an account" for n in sorted(listed - accounts)]
    for kind in OWNED_BY_ACCOUNT:
        for name in sorted(by_kind[kind] - accounts):
            problems.append(f"{kind} key of {name!r} outlived its account")
    for name in sorted(accounts):
        problems += await _check_account(store, name)
    for name in sorted(by_kind["tokens"] & accounts):
        problems += await _check_tokens(store, name, now)
    for key in sorted(dedupe):
        if never := await store.audit.dedupe_records_without_expiry(key):
            problems.append(f"{never} dedupe record(s) in {key!r} never expire")
    ttls = await store.audit.ttls_ms(counters + legacy)
    problems += [f"login counter {k!r} has no expiry" for k in counters if ttls[k] == -1]
    # A server of this version gives them one window to live when it starts.
    problems += [f"legacy dedupe key {k!r} has no expiry" for k in legacy if ttls[k] == -1]
    return problems


async def _check_account(store: Store, name: str) -> list[str]:
    if not arguments.is_valid_username(name):
        return [f"account {name!r} has a name the protocol rejects"]
    account = await store.account(name)
    if account is None:
        return [f"account {name!r} has no password hash"]
    if not account.gen:
        return [f"account {name!r} has no generation id"]
    problems: list[str] = []
    after = "0-0"
    count, size, per_sender = 0, 0, Counter[str]()
    lines: list[str] = []
    while True:
        try:
            batch = await store.read_range(name, after=after, count=1000)
        except KeyError as exc:
            return [f"inbox of {name!r} holds an entry without field {exc}"]
        problems += [f"inbox of {name!r} holds {m['seq']} addressed to {m['to']!r}"
                     for m in batch if m["to"] != name]
        count += len(batch)
        size += sum(len(m["body"].encode()) for m in batch)
        per_sender.update(m["from"] for m in batch)
        lines += [f"{len(m['body'].encode())} {m['from']}" for m in batch]
        if len(batch) < 1000:
            break
        after = batch[-1]["seq"]
    counted = await store.audit.inbox_counters(name)
    # None: stored before quotas and not sent to since; the next send counts it.
    if counted is not None and counted != (count, size, dict(per_sender)):
        problems.append(f"inbox counters of {name!r} say {counted[0]} messages, {counted[1]} "
                        f"bytes, per sender {counted[2]}; the inbox holds {count}, {size}, "
                        f"{dict(per_sender)}")
    if counted is not None:
        ledger = await store.audit.inbox_ledger(name)
        if ledger is not None and ledger != lines:
            problems.append(f"inbox ledger of {name!r} has {len(ledger)} lines that do not "
                            f"match its {len(lines)} messages (size and sender, in order)")
    return problems


async def _check_tokens(store: Store, name: str, now: int) -> list[str]:
    """Each token is live, or expired and due to go with its hash's TTL."""
    problems: list[str] = []
    for token_hash, expiry in (await store.audit.token_expiries(name)).items():
        if not expiry.isdigit():
            problems.append(f"token of {name!r} has expiry {expiry!r}, not a time")
        elif int(expiry) > now + MAX_TOKEN_LIFETIME_MS:
            problems.append(f"token of {name!r} expires implausibly late ({expiry})")
        if len(token_hash) != 64:
            problems.append(f"token record of {name!r} is not keyed by a sha256")
    ttl = (await store.audit.ttls_ms([keys.tokens(name)]))[keys.tokens(name)]
    if ttl == -1:
        problems.append(f"tokens of {name!r} never expire (expired ones would never be pruned)")
    return problems


async def check_cluster(cluster_nodes: str, password_file: str | None = None, *,
                        repair: bool = True) -> list[str]:
    """`check` on a Redis Cluster (every primary scanned), after completing the
    directory steps a crash may have left pending (data/directory.py) unless
    `repair` is False."""
    settings = Settings(cluster_nodes=cluster_nodes, redis_password_file=password_file)
    handles = redis_conn.connect(settings)
    topology = ClusterTopology(handles, settings.cluster_seeds, interval_ms=500)
    committer = GroupCommitter(handles.primary, required_replicas=topology.required_replicas,
                               ack_timeout_ms=settings.ack_timeout_ms,
                               shards=ClusterWrites(handles, topology,
                                                    ack_timeout_ms=settings.ack_timeout_ms))
    await topology.start()
    committer.start()
    try:
        store = Store(handles.primary, committer, max_inbox=1, cluster=True)
        if repair:
            await store.directory.repair()
        leftover = [f"user {name!r} is still in its slot's directory pending set"
                    for name in await store.directory.pending()]
        return await check(store) + leftover
    finally:
        await committer.close()
        await topology.close()
        await handles.close()


async def _main(url: str | None, password_file: str | None, cluster_nodes: str | None) -> int:
    try:
        if cluster_nodes:
            problems = await check_cluster(cluster_nodes, password_file)
        else:
            problems = await _check_url(url or "", password_file)
    except errors.Unavailable as exc:
        print(f"python -m server.invariants: {exc.detail}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"{len(problems)} violation(s)" if problems else "ok: no violations")
    return 1 if problems else 0


async def _check_url(url: str, password_file: str | None) -> list[str]:
    redis = Redis.from_url(url, password=read_password(password_file), decode_responses=True)
    committer = GroupCommitter(redis, required_replicas=lambda: 0, ack_timeout_ms=1000)
    try:
        return await check(Store(redis, committer, max_inbox=1))
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.invariants", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--redis-url", help="redis://host:port/db to check")
    where.add_argument("--cluster-nodes", help="a Redis Cluster's seed nodes host:port,...")
    parser.add_argument("--redis-password-file", help="file holding the Redis password")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args.redis_url, args.redis_password_file, args.cluster_nodes))
    except ValueError as exc:
        print(f"python -m server.invariants: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
