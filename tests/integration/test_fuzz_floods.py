"""Floods against a live server: 10k frames a second meet the rate limit while
another client's latency is measured, and half-open connections block no one.
`python -m server.invariants` checks Redis after each.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

from tests.conftest import StartServer
from tests.integration.fuzz_checks import PASSWORD, assert_healthy, run_invariants
from tests.procs import ServerProc
from tests.wsclient import Peer


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
