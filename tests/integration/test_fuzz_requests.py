"""Hypothesis writes request-shaped JSON against a live server (random ops, fields
and types, huge numbers, unicode edge cases): every reply is documented, and
`python -m server.invariants` finds Redis consistent afterwards.

Longer runs: FUZZ_EXAMPLES=20000.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server.wire import protocol
from tests.conftest import StartServer
from tests.integration.fuzz_checks import (
    NO_THROTTLE,
    PASSWORD,
    assert_healthy,
    check_reply,
    expected_id,
    request,
    run_invariants,
)
from tests.procs import ServerProc
from tests.wsclient import Peer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))

EDGE_TEXT = st.sampled_from([
    "", "\x00", "a\x00b", "\ud800", "\udfff", "x\udc00y", "\u202eevil", "\u200b", "ann\u200b",
    "\ufeff", "\U0001F600" * 10, "ｆｕｌｌ", "İ", "ß", "\\", '"', "*", "?*?", "0-0",
    "18446744073709551615-18446744073709551615", "fuzz", "peer", PASSWORD, "x" * 5000,
])
TEXT = st.one_of(EDGE_TEXT, st.text(max_size=40), st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,31}",
                                                               fullmatch=True))
NUMBER = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
                   st.sampled_from([0, -1, 1000, 1001, -(2**63), 10**400]),
                   st.floats(allow_nan=True, allow_infinity=True))
JSON = st.recursive(st.none() | st.booleans() | NUMBER | TEXT,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)
FIELDS = st.sampled_from(["username", "password", "token", "pattern", "limit", "cursor", "to",
                          "body", "msg_id", "seq", "new_password", "everywhere"])
REQUEST = st.fixed_dictionaries(
    {"op": st.one_of(st.sampled_from(sorted(protocol.OPS)), TEXT, JSON)},
    optional={"id": st.one_of(st.integers(), TEXT, JSON)},
).flatmap(lambda base: st.dictionaries(FIELDS | TEXT, JSON, max_size=5).map(
    lambda extra: {**extra, **base}))



class Session:
    """A logged-in sync connection that logs in again whenever the fuzz logged it out."""

    def __init__(self, server: ServerProc, stack: contextlib.ExitStack) -> None:
        self.server = server
        self.stack = stack
        self.ws = stack.enter_context(connect(server.url, max_size=None))
        self.login()

    def login(self) -> None:
        request(self.ws, json.dumps({"op": "register", "id": 0, "username": "fuzz",
                                     "password": PASSWORD}))
        reply = request(self.ws, json.dumps({"op": "login", "id": 0, "username": "fuzz",
                                             "password": PASSWORD}))
        assert reply["ok"], reply

    def restore_password(self, changed_to: str) -> None:
        """A fuzzed change_password worked: change it back so logins keep working."""
        reply = request(self.ws, json.dumps({"op": "change_password", "id": 0,
                                             "password": changed_to, "new_password": PASSWORD}))
        assert reply["ok"], reply

    def exchange(self, frame: str) -> dict[str, Any]:
        try:
            reply = request(self.ws, frame)
        except ConnectionClosed as closed:
            # Only a delete_account of "fuzz" from the other connection closes us (4001).
            assert closed.rcvd is not None and closed.rcvd.code == 4001, closed
            self.ws = self.stack.enter_context(connect(self.server.url, max_size=None))
            self.login()
            reply = request(self.ws, frame)
        return reply


async def test_random_requests_get_documented_replies_and_data_stays_consistent(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*NO_THROTTLE, redis_url=redis_url)
    setup = await Peer.connect(server.url)
    await setup.ok("register", username="peer", password=PASSWORD)

    def fuzz() -> None:
        with contextlib.ExitStack() as stack:
            sessions = [Session(server, stack), Session(server, stack)]
            run(sessions)

    def run(sessions: list[Session]) -> None:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=REQUEST, which=st.integers(0, 1))
        def one_request(body: dict[str, Any], which: int) -> None:
            frame = json.dumps(body)  # lone surrogates go out as \\ud800 escapes
            reply = sessions[which].exchange(frame)
            check_reply(reply, expected_id(frame))
            if reply["ok"] and body["op"] == "change_password":
                sessions[which].restore_password(body["new_password"])
            if reply["ok"] and body["op"] in ("logout", "change_password"):
                for session in sessions:  # logout everywhere, or a password change, ends both
                    session.login()
            elif reply["ok"] and body["op"] == "delete_account":
                sessions[which].login()

        one_request()

    await asyncio.to_thread(fuzz)
    assert_healthy(server)
    await setup.ok("login", username="peer", password=PASSWORD)
    run_invariants(redis_url)
