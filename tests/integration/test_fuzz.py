"""Hostile input against a live server: nothing crashes, every reply is documented.

Hypothesis writes request-shaped JSON (random ops, fields and types, huge
numbers, unicode edge cases); a bounded random-frame fuzzer sends junk text,
binary and raw bytes; a flood of 10k frames a second meets the rate limit
while another client's latency is measured; half-open connections must not
block anyone. After each, `python -m server.invariants` checks Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.wire import errors, protocol
from tests.conftest import StartServer
from tests.procs import ROOT, ServerProc
from tests.wsclient import Peer

CODES = {cls.code for cls in errors.ALL_CODES} - {"internal"}
#: Longer runs: FUZZ_EXAMPLES=20000 FUZZ_FRAMES=100000 FUZZ_SECONDS=600 FUZZ_SEED=N.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FRAMES = int(os.environ.get("FUZZ_FRAMES", "1500"))
FRAME_SECONDS = float(os.environ.get("FUZZ_SECONDS", "6"))
SEED = int(os.environ.get("FUZZ_SEED", "7"))
PASSWORD = "fuzz password"
NO_THROTTLE = ("--requests-per-second", "1000000", "--request-burst", "1000000",
               "--login-max-failures", "1000000", "--login-max-failures-per-address", "1000000",
               "--login-max-failures-per-user", "1000000")

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


def expected_id(frame: str) -> Any:
    """The id a reply must carry: the request's, if the frame parses with a usable one.

    Parsed with the standard library, exactly: any JSON integer is an id,
    and NaN/Infinity or lone surrogates make a frame that is not JSON text.
    """
    try:
        data = json.loads(frame, parse_constant=_not_json)
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    request_id = data.get("id")
    ok = isinstance(request_id, str | int) and not isinstance(request_id, bool)
    return request_id if ok else None


def _not_json(name: str) -> Any:
    raise ValueError(name)


def check_reply(reply: dict[str, Any], request_id: Any) -> None:
    assert reply["id"] == request_id, reply
    if reply["ok"] is not True:
        assert reply["ok"] is False and reply["error"] in CODES, reply
        assert isinstance(reply["detail"], str) and reply["detail"], reply


def request(ws: ClientConnection, frame: str | bytes) -> dict[str, Any]:
    ws.send(frame)
    while True:
        reply = json.loads(ws.recv(timeout=10))
        if "event" not in reply:
            return dict(reply)


def run_invariants(redis_url: str) -> None:
    result = subprocess.run([sys.executable, "-m", "server.invariants", "--redis-url", redis_url],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def assert_healthy(server: ServerProc) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.log()
    assert "Traceback" not in server.log()


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


def random_frame(rng: random.Random) -> str | bytes:
    kind = rng.randrange(6)
    size = rng.choice([0, 1, 2, 10, 100, 1000, 60_000])
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:  # up to 3 UTF-8 bytes a character: stay under the 64 KiB frame limit
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xD800)]))
                       for _ in range(min(size, 20_000)))
    if kind == 2:
        return "[" * (size // 2) + "]" * rng.randrange(size // 2 + 1)
    if kind == 3:
        return '{"op": "send", "id": 1, "to": ' + '{"a": ' * min(size, 5000) + "1"
    if kind == 4:
        return json.dumps({"op": "send", "id": rng.random(), "x": [None] * (size // 10)})
    return "".join(rng.choice('{}[]",:0123456789-.eEtrufalsn \\u') for _ in range(size))


async def test_random_frames_and_raw_bytes_never_crash_the_server(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*NO_THROTTLE, redis_url=redis_url)

    def fuzz_frames() -> int:
        rng, sent, end = random.Random(SEED), 0, time.monotonic() + FRAME_SECONDS
        with connect(server.url, max_size=None) as ws:
            while sent < FRAMES and time.monotonic() < end:
                frame = random_frame(rng)
                text = frame if isinstance(frame, str) else None
                reply = request(ws, frame)
                check_reply(reply, expected_id(text) if text is not None else None)
                assert reply["ok"] is False
                sent += 1
        return sent

    def fuzz_bytes() -> None:
        rng = random.Random(SEED + 1)
        for i in range(40):
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                if i % 2:  # garbage after a real handshake: random frame headers and payloads
                    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Key: "
                                 b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                with_garbage = rng.randbytes(rng.randrange(1, 4000))
                try:
                    sock.sendall(with_garbage)
                    sock.shutdown(socket.SHUT_WR)  # EOF: no waiting for the handshake timeout
                    while sock.recv(65536):
                        pass
                except (ConnectionResetError, BrokenPipeError, TimeoutError):
                    pass

    sent = await asyncio.to_thread(fuzz_frames)
    assert sent >= 100, f"only {sent} frames in the time bound"
    await asyncio.to_thread(fuzz_bytes)
    assert_healthy(server)
    peer = await Peer.connect(server.url)
    await peer.register_login("after")
    await peer.send_message("after", "still serving")
    run_invariants(redis_url)


async def measure_latency(server: ServerProc, rounds: int) -> list[float]:
    peer = await Peer.connect(server.url)
    await peer.ok("login", username="calm", password=PASSWORD)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await peer.ok("fetch", limit=1)
        samples.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    await peer.close()
    return samples


async def test_ten_thousand_frames_a_second_are_rate_limited_and_others_unaffected(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(redis_url=redis_url)  # default limits: 200/s, burst 400
    setup = await Peer.connect(server.url)
    await setup.ok("register", username="calm", password=PASSWORD)
    flooder = await Peer.connect(server.url)
    await flooder.register_login("flood")
    before = await measure_latency(server, 30)
    total = 10_000

    async def flood() -> float:
        started = time.perf_counter()
        for i in range(total):
            await flooder.send_raw(f'{{"op": "fetch", "id": {i}, "limit": 1}}')
        return time.perf_counter() - started

    async def replies() -> list[str]:
        codes = []
        for i in range(total):
            reply = await flooder.recv(timeout=30)
            assert reply["id"] == i, reply
            codes.append("ok" if reply["ok"] else reply["error"])
        return codes

    reader = asyncio.create_task(replies())
    during_task = asyncio.create_task(measure_latency(server, 30))
    send_seconds = await flood()
    codes, during = await reader, await during_task
    assert send_seconds < 2.0, f"the flood took {send_seconds:.2f}s to send"
    assert set(codes) <= {"ok", "rate_limited"}
    assert codes.count("rate_limited") >= total - 2000, codes.count("ok")
    assert statistics.median(during) < max(0.25, 5 * statistics.median(before)), (before, during)
    assert max(during) < 2.0, during
    # The bucket refills (200/s): a tenth of a second after its flood the
    # flooder is served again; the flood's last frames may have emptied it.
    await asyncio.sleep(0.1)
    await flooder.ok("fetch")
    assert_healthy(server)
    run_invariants(redis_url)


async def test_half_open_connections_do_not_block_others(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(redis_url=redis_url)
    silent_tcp = [socket.create_connection((server.host, server.port)) for _ in range(50)]
    partial = [socket.create_connection((server.host, server.port)) for _ in range(10)]
    for sock in partial:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: ")
    silent_ws = [await Peer.connect(server.url) for _ in range(20)]
    try:
        started = time.perf_counter()
        alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
        await alice.register_login("alice")
        await bob.register_login("bob")
        await alice.send_message("bob", "through the crowd")
        assert (await bob.event(timeout=5))["message"]["body"] == "through the crowd"
        assert time.perf_counter() - started < 5.0
    finally:
        for sock in silent_tcp + partial:
            sock.close()
        for peer in silent_ws:
            await peer.close()
    assert_healthy(server)
    run_invariants(redis_url)
