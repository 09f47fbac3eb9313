"""What each op of PROTOCOL.md does, given a connection and valid arguments.

Each function returns the result fields of the ok reply or raises a
ChatError; the connection loop turns either into the reply frame.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from server.conn import auth
from server.wire import arguments, errors, protocol, reply_size

if TYPE_CHECKING:
    from server.conn.session import Session
    from server.data.commit import OrderedGroup

log = logging.getLogger(__name__)

Op = Callable[["Session", dict[str, Any]], Awaitable[dict[str, Any]]]

#: Names examined per Redis round trip and round trips per list_users page.
LIST_SCAN = 500
LIST_ROUNDS = 5


def now_ms() -> int:
    return int(time.time() * 1000)


async def register(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    svc = conn.services
    with svc.passwords.slots.slot(conn.address_key):
        password_hash = await svc.passwords.hash(args["password"], address=conn.address_key)
    created = await svc.store.register(
        args["username"], password_hash, gen=secrets.token_hex(8), now_ms=now_ms()
    )
    if not created:
        raise errors.UsernameTaken(f"{args['username']!r} is taken")
    return {"username": args["username"]}


async def _check_password(conn: Session, name: str, password: str) -> str:
    """The account generation if the password is right.

    Runs in a hashing slot of the client's address (rate_limited at once
    when there is none). Throttled per name+address, per address over all
    names (password spraying) and per name over all addresses (guessing one
    account from many places), counting failures only: correct logins in
    progress never count, and the per-address hashing bound keeps the
    guesses in flight too few to outrun the counters.
    """
    svc, settings = conn.services, conn.services.settings
    valid = arguments.is_valid_username(name)
    with svc.passwords.slots.slot(conn.address_key):
        counts = await svc.store.logins.counts(name if valid else None, conn.address_key)
        if counts.by_name > settings.login_max_failures or (
            counts.by_address > settings.login_max_failures_per_address
        ) or counts.by_user > settings.login_max_failures_per_user:
            # Not the name tried: people type passwords into the name field.
            log.info("login throttled addr=%s conn=%s", conn.address, conn.conn_id)
            raise errors.RateLimited("too many failed logins; wait a minute")
        account = await svc.store.account(name) if valid else None
        matched = await svc.passwords.verify(account.password_hash if account else None,
                                             password, address=conn.address_key)
        if matched and account is not None:
            return account.gen
        await svc.store.logins.count_failure(name if valid else None, conn.address_key,
                                             window_ms=settings.login_window_s * 1000)
    raise errors.BadCredentials("wrong username or password")


async def login(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    svc = conn.services
    name = args["username"]
    gen = await _check_password(conn, name, args["password"])
    token = auth.new_token(name)
    token_hash = auth.token_hash(token)
    now = now_ms()
    expires = now + svc.settings.token_ttl_s * 1000
    replaced = await svc.store.sessions.issue_token(
        name, token_hash, gen=gen, expires_ms=expires, now_ms=now,
        max_sessions=svc.settings.max_sessions_per_user)
    if replaced is None:
        raise errors.BadCredentials("wrong username or password")
    await svc.delivery.notify_ended(name, replaced, origin=conn.conn_id)
    await conn.start_session(name, gen, token_hash)
    return {"username": name, "token": token, "unread": await _unread_or_end(conn, name),
            "dedupe_window_ms": svc.settings.dedupe_window_s * 1000}


async def resume(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    svc = conn.services
    parts = auth.split_token(args["token"])
    if parts is None or not arguments.is_valid_username(parts[0]):
        raise errors.BadToken("unknown or expired token; log in again")
    name = parts[0]
    token_hash = auth.token_hash(parts[1])
    gen = await svc.store.sessions.token_session(name, token_hash, now_ms=now_ms())
    if gen is None:
        raise errors.BadToken("unknown or expired token; log in again")
    await conn.start_session(name, gen, token_hash)
    return {"username": name, "unread": await _unread_or_end(conn, name),
            "dedupe_window_ms": svc.settings.dedupe_window_s * 1000}


async def _unread_or_end(conn: Session, name: str) -> int:
    """The unread count; if it cannot be read the login fails as a whole."""
    try:
        return await conn.services.store.unread(name)
    except errors.ChatError:
        await conn.end_session()
        raise


async def logout(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    """Revoke this token (or every token of the account); their sessions end everywhere."""
    name, token_hash, gen = conn.require_session(), conn.token_hash, conn.gen
    svc = conn.services
    if token_hash is not None:
        # Revoked first, so a failure leaves the session as it was (the client
        # retries); meanwhile no note or sweep may end this connection itself.
        conn.token_hash = None
        try:
            revoked = await svc.store.sessions.revoke_tokens(
                name, gen=gen, now_ms=now_ms(), reason="logout",
                token_hash=None if args["everywhere"] else token_hash)
        finally:
            if conn.username == name and conn.token_hash is None:
                conn.token_hash = token_hash
    await conn.end_session()  # clears the session before it awaits anything
    if token_hash is not None:
        await svc.delivery.notify_ended(name, revoked, origin=conn.conn_id)
    return {}


async def change_password(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    """New password and a new token for this connection; every other session ends."""
    name = conn.require_session()
    svc = conn.services
    gen = await _check_password(conn, name, args["password"])
    if gen != conn.gen:
        raise errors.BadCredentials("the account changed; log in again")
    with svc.passwords.slots.slot(conn.address_key):
        password_hash = await svc.passwords.hash(args["new_password"], address=conn.address_key)
    token = auth.new_token(name)
    token_hash = auth.token_hash(token)
    now = now_ms()
    # While the tokens change, neither a revocation note nor the sweep may end
    # this connection: it holds no token until it holds the new one.
    old, conn.token_hash = conn.token_hash, None
    try:
        revoked = await svc.store.sessions.change_password(
            name, gen=gen, password_hash=password_hash, token_hash=token_hash,
            expires_ms=now + svc.settings.token_ttl_s * 1000, now_ms=now,
            max_sessions=svc.settings.max_sessions_per_user)
    finally:
        if conn.username == name and conn.token_hash is None:
            conn.token_hash = old
    if revoked is None:
        raise errors.BadCredentials("the account changed; log in again")
    conn.token_hash = token_hash
    log.info("password changed user=%s addr=%s conn=%s sessions_ended=%d",
             name, conn.address, conn.conn_id, len(revoked))
    await svc.delivery.notify_ended(name, revoked, origin=conn.conn_id)
    return {"token": token}


async def list_users(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    """A page of matching names: at most `limit`, and at most args["room"] bytes."""
    conn.require_session()
    regex = arguments.glob_to_regex(args["pattern"])
    prefix = arguments.literal_prefix(args["pattern"])
    limit: int = args["limit"]
    room: int = args["room"]
    after: str | None = args["cursor"]
    users: list[str] = []
    for _ in range(LIST_ROUNDS):
        batch = await conn.services.store.list_users(start_after=after, prefix=prefix,
                                                     count=LIST_SCAN)
        for name in batch:
            if regex.fullmatch(name):
                room -= reply_size.name_bytes(name)
                if room < 0 and users:  # the next page starts at this name
                    return {"users": users, "cursor": after}
                users.append(name)
                if len(users) == limit:
                    return {"users": users, "cursor": name}
            after = name
        if len(batch) < LIST_SCAN:
            return {"users": users, "cursor": None}
    # Bounded work per request: a sparse pattern pages on with fewer names.
    return {"users": users, "cursor": after}


async def send(conn: Session, args: dict[str, Any], *,
               group: OrderedGroup | None = None) -> dict[str, Any]:
    """`group`: one of the connection's pipelined sends, stored in request order."""
    sender = conn.require_session()
    svc = conn.services
    to, msg_id = args["to"], args["msg_id"]
    result = await svc.store.send(
        sender=sender, to=to, body=args["body"], msg_id=msg_id, now_ms=now_ms(), group=group
    )
    message = None
    if result.prev is not None:
        message = protocol.message(
            msg_id=msg_id, sender=sender, to=to, body=args["body"], ts=result.ts, seq=result.seq
        )
    # A retry republishes without the body: pushers re-read the inbox.
    svc.delivery.notify_message(to, result.seq, message, result.prev)
    return {"msg_id": msg_id, "ts": result.ts}


async def fetch(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    name = conn.require_session()
    messages, left = await conn.services.store.fetch(name, limit=args["limit"],
                                                     room=args["room"])
    fit = reply_size.messages_within(messages, args["room"])
    if fit < len(messages):  # the store's estimate was not tight; `unread` stays exact
        left += len(messages) - fit
        del messages[fit:]
    return {"messages": messages, "unread": left}


async def ack(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    name = conn.require_session()
    return {"removed": await conn.services.store.ack(name, args["seq"])}


async def delete_account(conn: Session, args: dict[str, Any]) -> dict[str, Any]:
    name = conn.require_session()
    svc = conn.services
    gen = await _check_password(conn, name, args["password"])
    if gen != conn.gen or not await svc.store.delete_account(name, gen=gen, now_ms=now_ms()):
        raise errors.BadCredentials("the account changed; log in again")
    await conn.end_session()
    try:
        await svc.delivery.notify_deleted(name, origin=conn.conn_id)
    except errors.Unavailable as exc:
        log.warning("account_deleted publish failed (sweep will close sessions): %s", exc.detail)
    return {}


OPS: dict[str, Op] = {
    "register": register,
    "login": login,
    "resume": resume,
    "logout": logout,
    "change_password": change_password,
    "list_users": list_users,
    "send": send,
    "fetch": fetch,
    "ack": ack,
    "delete_account": delete_account,
}
