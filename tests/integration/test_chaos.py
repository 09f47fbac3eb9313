"""Chaos: SIGKILL Redis nodes and server instances under load; nothing acked is lost.

Two server instances share one local Sentinel set (3 nodes, 3 Sentinels,
down-after 1 s). Sender s0 talks to instance A and sends to r0 on instance B;
s1 on B sends to r1 on A; each client knows both URLs. After the faults the
dead nodes come back, the set settles, and tests/chaosload.verify() checks
that every acked send arrived once, in order per sender. Each test prints
the outage its faults caused (see docs/failure-model.md).

SIGKILL of one server instance under load (clients move over) is covered
with a single Redis by
tests/integration/test_client_library.py::test_sigkill_of_senders_instance_mid_200_sends_delivers_each_once_in_order;
the test here adds the Sentinel set and receivers that move too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.chaosload import Load, Receiver, Sender, eventually, logged_in
from tests.conftest import StartServer
from tests.integration.conftest import MakeClient, MakeSentinelSet
from tests.outage_probe import Outage, Probe
from tests.procs import ServerProc
from tests.scrape import healthz

pytestmark = pytest.mark.slow

#: Sentinel's down-after-milliseconds here: short, so each failover takes ~2-4 s.
DOWN_AFTER_MS = 1000
#: Generous bound for one failover, on a machine shared with other test runs.
FAILOVER_WITHIN = 30.0


def report(what: str, outage: Outage | None) -> None:
    # A plain print: `pytest -s` (or -rP for the captured output) shows it.
    print(f"\nMEASURED {what}: {outage if outage else 'no ok send seen yet'}", flush=True)


@dataclass
class Rig:
    local: LocalSet
    servers: tuple[ServerProc, ServerProc]
    load: Load
    probe: Probe

    async def healthz_all(self, predicate: Callable[[int, dict[str, Any]], bool],
                          within: float, what: str) -> None:
        def check() -> bool:
            return all(predicate(*healthz(s.http_url)) for s in self.servers)
        await eventually(check, within, what)


@pytest.fixture
async def rig(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer, chat_clients: MakeClient
) -> AsyncIterator[Callable[[], Awaitable[Rig]]]:
    """rig() -> a started Rig; every client, server and node is stopped at teardown."""
    rigs: list[Rig] = []

    async def make() -> Rig:
        local = await asyncio.to_thread(
            make_sentinel_set, down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=5000)
        args = ("--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name)
        a = await asyncio.to_thread(start_server, *args)
        b = await asyncio.to_thread(start_server, *args)
        senders = [
            Sender(await logged_in(chat_clients(a.url, b.url), "s0"), "s0", "r0"),
            Sender(await logged_in(chat_clients(b.url, a.url), "s1"), "s1", "r1"),
        ]
        receivers = [
            Receiver(await logged_in(chat_clients(b.url, a.url), "r0"), "r0"),
            Receiver(await logged_in(chat_clients(a.url, b.url), "r1"), "r1"),
        ]
        probe = Probe(a.url, "probe")
        await probe.start()
        made = Rig(local, (a, b), Load(senders, receivers), probe)
        rigs.append(made)
        made.load.start()
        await made.load.wait_progress(20, 30, "load before any fault")
        return made

    yield make
    for made in rigs:
        await made.load.close()
        await made.probe.close()


def priorities(local: LocalSet) -> dict[int, str | None]:
    """replica-priority of every running node (None: no answer)."""
    out: dict[int, str | None] = {}
    for i, node in enumerate(local.nodes):
        if not node.alive():
            continue
        try:
            with node.client() as client:
                out[i] = str(client.config_get("replica-priority")["replica-priority"])
        except (redis.RedisError, OSError):
            out[i] = None
    return out


def primary_index(local: LocalSet) -> int:
    return local.node_index(local.primary_address())


def replica_index(local: LocalSet) -> int:
    primary = primary_index(local)
    return next(i for i, node in enumerate(local.nodes) if i != primary and node.alive())


async def crash(rig: Rig, role: str) -> int:
    """SIGKILL the node that has `role` now; return once sends flow again."""
    local = rig.local
    index = primary_index(local) if role == "primary" else replica_index(local)
    old_primary = local.primary_address()
    fault = time.monotonic()
    await asyncio.to_thread(local.kill_node, index)
    if role == "primary":
        new = await asyncio.to_thread(local.wait_for_failover, old_primary, FAILOVER_WITHIN)
        print(f"\nfailover {old_primary[1]} -> {new[1]} after "
              f"{time.monotonic() - fault:.2f}s (Sentinel majority)", flush=True)
    alive_replicas = sum(1 for n in local.nodes if n.alive()) - 1
    await rig.healthz_all(lambda _, body: body.get("replicas_in_sync") == alive_replicas,
                          FAILOVER_WITHIN, f"servers wait for {alive_replicas} replicas")
    await eventually(lambda: rig.probe.outage_since(fault) is not None, FAILOVER_WITHIN,
                     "the probe's sends succeed again")
    report(f"SIGKILL of the {role} (down-after {DOWN_AFTER_MS} ms)", rig.probe.outage_since(fault))
    await rig.load.wait_progress(20, FAILOVER_WITHIN, f"load after killing the {role}")
    return index


# Nodes are interchangeable except for their role when they die, so the six
# orders of killing two of three nodes reduce to the role of each victim:
# the primary or a replica first, then the (new) primary or a replica. The
# two replicas are alike (both acked every write), so which one dies does
# not matter. That leaves these four.
ORDERS = {
    "primary-then-new-primary": ("primary", "primary"),
    "primary-then-replica": ("primary", "replica"),
    "replica-then-primary": ("replica", "primary"),
    "replica-then-replica": ("replica", "replica"),
}


@pytest.mark.parametrize("order", list(ORDERS))
async def test_crash_of_two_nodes_one_after_the_other_loses_no_acked_message(
    rig: Callable[[], Awaitable[Rig]], order: str
) -> None:
    chaos = await rig()
    killed = [await crash(chaos, role) for role in ORDERS[order]]

    # One node left: it acks alone and says so.
    await chaos.healthz_all(lambda code, body: code == 200 and body["status"] == "degraded",
                            FAILOVER_WITHIN, "both servers report degraded")
    await chaos.load.wait_progress(30, FAILOVER_WITHIN, "sends with one node left")

    for index in killed:
        await asyncio.to_thread(chaos.local.restart_node, index)
    await asyncio.to_thread(chaos.local.wait_healthy, FAILOVER_WITHIN)
    await chaos.healthz_all(lambda code, body: code == 200 and body["status"] == "ok",
                            FAILOVER_WITHIN, "both servers healthy after the restarts")
    # restart_node starts them fenced; the servers lift every fence once in sync.
    await eventually(lambda: all(p not in ("0", None) for p in priorities(chaos.local).values()),
                     FAILOVER_WITHIN, "no node left at replica-priority 0")
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the restarts")

    result = await chaos.load.finish()
    print(f"\n{order}: {result.describe()}", flush=True)
    assert result.ok, result.describe()


async def test_sigkill_of_every_node_at_once_loses_no_acked_message(
    rig: Callable[[], Awaitable[Rig]]
) -> None:
    """Every Redis node and Sentinel is SIGKILLed while sends are being acked.

    The last acks come milliseconds before the kill, well inside the 1 s
    `appendfsync everysec` window: they survive because every node wrote
    the AOF into the kernel's page cache before it replied (primary) or
    acked (replica), and a process crash does not lose the page cache. This
    does not show survival of a power loss: that needs --durability fsync.
    """
    chaos = await rig()
    await chaos.load.wait_progress(100, FAILOVER_WITHIN, "load before the kill")
    fault = time.monotonic()
    await asyncio.to_thread(chaos.local.kill_all)
    stamps = [t for s in chaos.load.senders for t in s.acked_at]
    recent = sum(1 for t in stamps if t > fault - 1.0)
    print(f"\nSIGKILL of every node: {len(stamps)} sends acked, {recent} of them in the "
          f"last second before the kill (inside the everysec fsync window)", flush=True)
    await asyncio.to_thread(chaos.local.restart_all, FAILOVER_WITHIN * 2)
    await eventually(lambda: chaos.probe.outage_since(fault) is not None, FAILOVER_WITHIN,
                     "the probe's sends succeed again")
    report("SIGKILL of every node, then restart_all()", chaos.probe.outage_since(fault))
    await chaos.load.wait_progress(20, FAILOVER_WITHIN, "sends after the restart")
    result = await chaos.load.finish()
    print(f"\nkill-all: {result.describe()}", flush=True)
    assert result.ok, result.describe()


async def test_sigkill_of_a_server_instance_under_load_loses_no_acked_message(
    rig: Callable[[], Awaitable[Rig]]
) -> None:
    chaos = await rig()
    a, b = chaos.servers
    await asyncio.to_thread(a.kill)  # s0 and r1 were on A: both move to B
    await chaos.load.wait_progress(30, FAILOVER_WITHIN, "sends after instance A died")
    assert all(s.client.url == b.url for s in chaos.load.senders)
    result = await chaos.load.finish()
    assert result.ok, result.describe()
