"""Ending sessions whose token was revoked or expired, on every instance.

The instance that revokes publishes a note on the user's channel (the same
fan-out an account deletion uses); every instance ends its local sessions
holding one of the tokens named, with the reason given. Pub/sub may drop
the note, so the periodic sweep also asks Redis about the token of every
local session and ends the dead ones with the reason Redis kept
(data/sessions.py); a token that just ran out ends as `expired`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from server.data.sessions import Revoked
from server.store import Store
from server.wire import errors, notifications

log = logging.getLogger(__name__)


class SessionHolder(Protocol):
    """A logged-in connection as revocation sees it."""

    conn_id: str
    token_hash: str | None

    def end_by(self, reason: str, token_hash: str) -> None: ...


async def announce(store: Store, name: str, revoked: list[Revoked], *, origin: str) -> None:
    """Tell every instance; a lost note is repaired by the sweep, so failure only logs."""
    if not revoked:
        return
    note = notifications.ended({r.token_hash: r.reason for r in revoked}, origin)
    try:
        await store.publish(name, note)
    except errors.Unavailable as exc:
        log.warning("session_ended publish failed for user=%s (the sweep ends them): %s",
                    name, exc.detail)


def end_local(holders: Iterable[SessionHolder], sessions: Mapping[str, str], origin: str) -> None:
    """End the local sessions using a token of `sessions` (sha256 -> reason)."""
    for holder in list(holders):
        token = holder.token_hash
        if token is not None and token in sessions and holder.conn_id != origin:
            holder.end_by(sessions[token], token)


async def sweep(store: Store, local: Mapping[str, Iterable[SessionHolder]]) -> None:
    """End every local session whose token is no longer live, with the reason kept."""
    sessions: dict[tuple[str, str], list[SessionHolder]] = {}
    for name, holders in local.items():
        for holder in list(holders):
            if holder.token_hash is not None:
                sessions.setdefault((name, holder.token_hash), []).append(holder)
    if not sessions:
        return
    ended = await store.sessions.ended_sessions(list(sessions), now_ms=int(time.time() * 1000))
    for (name, token), reason in ended.items():
        for holder in sessions[(name, token)]:
            # end_by checks the token again: a change_password may have given
            # this connection a new one while we read.
            holder.end_by(reason, token)
