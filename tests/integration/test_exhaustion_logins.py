"""Issue 17: password hashing is a bounded resource; a login flood from one address
slows no one else, and clients behind one address still all get in by retrying.

Real server processes and hostile peers (tests/integration/hostile_peers.py);
timing bounds are the issue's, and print what they measured when they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from client.backoff import Backoff  # the client library's own retry policy
from tests.conftest import StartServer
from tests.integration.hostile_peers import (
    MIB,
    NO_RATE,
    REAL_ARGON2,
    PeakRss,
    login_from,
    peer_from,
    timed,
)
from tests.wsclient import Peer


async def test_login_flood_from_one_address_neither_slows_others_nor_grows_memory(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*NO_RATE, redis_url=redis_url, env=REAL_ARGON2)
    setup = await peer_from(server, "127.0.0.4")
    for name in ("target", "other"):
        await setup.ok("register", username=name, password="correct horse")
    await setup.close()
    # One login's cost on this machine now (a shared machine is slower than 1 s allows).
    idle = min([(await timed(lambda: login_from(server, "127.0.0.3", "other")))[1]
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
        _, took = await timed(lambda: login_from(server, "127.0.0.3", "other"))
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
    idle = min([(await timed(lambda: login_from(server, "127.0.0.3", "nat")))[1]
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
