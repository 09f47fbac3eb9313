"""Issue 17: a client that reads slowly, not at all, or never answers pings cannot
exhaust an instance (outbox bounded in bytes, write timeout, keepalive).

Real server processes and hostile peers (tests/integration/hostile_peers.py);
timing bounds are the issue's, and print what they measured when they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

from tests import scrape
from tests.conftest import StartServer
from tests.integration.hostile_peers import (
    CONTROL_BODY,
    MIB,
    NO_RATE,
    PeakRss,
    fill_inbox,
    peer_from,
)
from tests.rawws import drained_to_the_end, open_non_reader, request_frame, upgraded
from tests.wsclient import Peer


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

