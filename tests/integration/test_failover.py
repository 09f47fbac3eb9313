"""The server over a real Sentinel set: what it waits for, and how it rides a failover.

Raw protocol peers (tests/wsclient.py), so nothing retries behind the
test's back: every `unavailable` the server answers is seen here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.chaosload import eventually
from tests.conftest import StartServer
from tests.integration.conftest import MakeSentinelSet
from tests.procs import ServerProc
from tests.wsclient import Peer

pytestmark = pytest.mark.slow

DOWN_AFTER_MS = 1000
WITHIN = 30.0


def http_get(server: ServerProc, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{server.http_url}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def healthz(server: ServerProc) -> tuple[int, dict[str, Any]]:
    code, body = http_get(server, "/healthz")
    return code, json.loads(body)


def metric(server: ServerProc, name: str) -> float:
    _, page = http_get(server, "/metrics")
    match = re.search(rf"^{name} (\S+)$", page, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def sentinel_args(local: LocalSet) -> tuple[str, ...]:
    return ("--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name)


def addr(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


async def send(peer: Peer, to: str) -> dict[str, Any]:
    return await peer.request("send", to=to, body="hi", msg_id=uuid.uuid4().hex)


async def test_a_send_waits_for_both_replicas_of_a_healthy_set(
    sentinel_set: LocalSet, start_server: StartServer
) -> None:
    server = start_server(*sentinel_args(sentinel_set))
    peer = await Peer.connect(server.url)
    name = f"u{uuid.uuid4().hex[:8]}"  # the shared set outlives this test
    await peer.register_login(name)
    assert (await send(peer, name))["ok"]
    assert metric(server, "chat_required_replicas") == 2
    code, body = healthz(server)
    assert (code, body["status"], body["replicas_in_sync"]) == (200, "ok", 2)
    assert body["primary"] == addr(sentinel_set.primary_address())


async def test_primary_crash_answers_unavailable_until_failover_then_pushes_resume(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer
) -> None:
    local = make_sentinel_set(down_after_ms=DOWN_AFTER_MS)
    a = start_server(*sentinel_args(local))
    b = start_server(*sentinel_args(local))
    alice = await Peer.connect(a.url)
    await alice.register_login("alice")
    bob = await Peer.connect(b.url)  # stays connected to B through the failover
    await bob.register_login("bob")
    assert (await send(alice, "bob"))["ok"]
    assert (await bob.event())["event"] == "message"

    old = local.primary_address()
    local.kill_node(local.node_index(old))
    errors: list[str] = []
    while True:
        reply = await send(alice, "bob")
        if reply["ok"]:
            break
        errors.append(reply["error"])
        await asyncio.sleep(0.05)
    assert errors and set(errors) == {"unavailable"}, errors

    # The message acked after the failover reaches bob on B without him
    # reconnecting: B's listener moved to the new primary and resynced.
    # (A send answered `unavailable` may still have been stored and arrive first.)
    end = time.monotonic() + WITHIN
    while (await bob.event(timeout=WITHIN))["message"]["msg_id"] != reply["msg_id"]:
        assert time.monotonic() < end
    def failover_lines(server: ServerProc) -> list[str]:
        return [line for line in server.log().splitlines() if "failover: primary" in line]

    # B's listener may find the new primary before B's topology poll does.
    await eventually(lambda: all(failover_lines(s) for s in (a, b)), 5, "both log it")
    await asyncio.sleep(1.0)  # a few more polls: no line more
    # Sentinel may fail over once more on its own (seen: the just-promoted
    # primary marked down a second later): then each line takes up where the
    # one before ended, never back to the dead node, and ends at the primary.
    current = addr(local.primary_address())
    for server in (a, b):
        moves = [line.rsplit("failover: primary ", 1)[1].split(" -> ")
                 for line in failover_lines(server)]
        assert moves[0][0] == addr(old), moves
        assert all(later[0] == earlier[1] for earlier, later in itertools.pairwise(moves)), moves
        assert addr(old) not in [target for _, target in moves], moves
        assert moves[-1][1] == current, moves


async def test_new_primary_does_not_ack_before_the_other_replica_follows_it(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer
) -> None:
    """Kill the primary; SIGKILL the new one the moment it acks its first send.

    A new primary that acked alone before the other replica follows it
    would lose that send when it dies and Sentinel promotes the other one.
    Two things prevent it: Sentinel names the new primary only once the
    other replicas follow it (or its failover-timeout ran out), and the
    server waits for every replica a Sentinel could promote, following or
    not (server/storage/topology.py).
    """
    local = make_sentinel_set(down_after_ms=DOWN_AFTER_MS)
    server = start_server(*sentinel_args(local))
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    first = local.primary_address()
    local.kill_node(local.node_index(first))
    while not (reply := await send(alice, "alice"))["ok"]:
        pass  # as fast as it goes: the window to catch is short
    # The server acks only on the primary a Sentinel majority names.
    second = local.primary_address()
    assert second != first
    local.kill_node(local.node_index(second))
    local.wait_for_failover(second, WITHIN)
    end = time.monotonic() + WITHIN
    while not (fetched := await alice.request("fetch"))["ok"]:
        assert time.monotonic() < end, fetched
        await asyncio.sleep(0.1)
    assert reply["msg_id"] in [m["msg_id"] for m in fetched["messages"]]


async def test_without_a_sentinel_majority_sends_are_unavailable_and_healthz_503(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer
) -> None:
    local = make_sentinel_set(down_after_ms=DOWN_AFTER_MS)
    server = start_server(*sentinel_args(local))
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    local.kill_sentinel(0)
    local.kill_sentinel(1)
    await eventually(lambda: healthz(server)[0] == 503, WITHIN, "healthz turns 503")
    assert "Sentinel" in healthz(server)[1]["reason"]
    reply = await send(alice, "alice")
    assert (reply["ok"], reply["error"]) == (False, "unavailable")

    local.restart_sentinel(0)
    await eventually(lambda: healthz(server)[0] == 200, WITHIN, "healthz back to 200")
    assert (await send(alice, "alice"))["ok"]


async def test_frozen_replica_stalls_sends_only_until_sentinel_marks_it_down(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer
) -> None:
    """SIGSTOP a replica: the primary still lists it online (until its
    repl-timeout, 60 s), so WAITs for it time out and sends answer
    `unavailable` until the Sentinels mark it down; then the write waits for
    the other replica only. The gap is bounded by down-after plus one
    topology poll plus one ack timeout."""
    local = make_sentinel_set(down_after_ms=DOWN_AFTER_MS)
    server = start_server(*sentinel_args(local), "--ack-timeout-ms", "500")
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    primary = local.primary_address()
    replica = next(n for n in local.nodes if n.address != primary)
    assert replica.pid is not None
    os.kill(replica.pid, signal.SIGSTOP)
    try:
        frozen = time.monotonic()
        failures = 0
        while not (reply := await send(alice, "alice"))["ok"]:
            assert reply["error"] == "unavailable", reply
            failures += 1
        gap = time.monotonic() - frozen
        print(f"\nMEASURED frozen replica: {failures} failed sends, first ok after {gap:.2f}s",
              flush=True)
        assert gap < (DOWN_AFTER_MS + 500 + 500) / 1000 + 3.0  # + slack for a busy machine
        assert metric(server, "chat_required_replicas") == 1
    finally:
        os.kill(replica.pid, signal.SIGCONT)
