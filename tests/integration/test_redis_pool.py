"""A server with --redis-max-connections 8 serves a burst of 100 clients
through at most 8 connections to the Redis primary (issue #6).

The Redis node's CLIENT LIST is read while the burst runs; a client counts
as the server's when its address is one of the server process's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.wsclient import Peer

CAP = 8
CLIENTS = 100
PASSWORD = "correct horse"
#: Besides the pool, Sentinel mode has one client of its own for the
#: topology's INFO of the primary; one more for slack.
OTHER_CLIENTS = 2


def local_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process `pid` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def clients_of(redis: Redis, pid: int) -> int:
    """How many of the Redis node's clients are connections of process `pid`."""
    ports = local_ports(pid)
    clients = await redis.client_list()
    return sum(1 for client in clients if int(client["addr"].rsplit(":", 1)[1]) in ports)


@contextlib.asynccontextmanager
async def peak_clients(host: str, port: int, server: ServerProc) -> AsyncIterator[list[int]]:
    """Sample the server's client count on the node every 20 ms; yields the samples."""
    assert server.proc is not None
    pid = server.proc.pid
    samples: list[int] = []
    redis = Redis(host=host, port=port, decode_responses=True)

    async def sample() -> None:
        while True:
            samples.append(await clients_of(redis, pid))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        samples.append(await clients_of(redis, pid))
        await redis.aclose()


#: 100 clients from one address register at once: the Redis pool is under
#: test here, not the per-address share of password hashing.
HASH_UNBOUNDED = ("--max-hash-per-address", "1000", "--max-hash-queue", "1000")


async def burst(server: ServerProc) -> None:
    """100 clients at once: register, log in, send to the next one, receive,
    then resume on a second connection each."""
    names = [f"u{i}-{uuid.uuid4().hex[:6]}" for i in range(CLIENTS)]
    peers = await asyncio.gather(*(Peer.connect(server.url) for _ in names))
    await asyncio.gather(*(peer.ok("register", username=name, password=PASSWORD)
                           for peer, name in zip(peers, names, strict=True)))
    replies = await asyncio.gather(*(
        peer.ok("login", username=name, password=PASSWORD)
        for peer, name in zip(peers, names, strict=True)))
    tokens: list[str] = [reply["token"] for reply in replies]
    await asyncio.gather(*(
        peer.send_message(names[(i + 1) % CLIENTS], f"hello from {names[i]}")
        for i, peer in enumerate(peers)))
    events = await asyncio.gather(*(peer.event(timeout=20) for peer in peers))
    for i, event in enumerate(events):
        assert event["event"] == "message", event
        assert event["message"]["body"] == f"hello from {names[i - 1]}", event
    again = await asyncio.gather(*(Peer.connect(server.url) for _ in names))
    resumed = await asyncio.gather(*(peer.ok("resume", token=token)
                                     for peer, token in zip(again, tokens, strict=True)))
    assert [reply["username"] for reply in resumed] == names


async def test_burst_of_100_clients_is_served_through_at_most_8_redis_connections(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server("--redis-max-connections", str(CAP), *HASH_UNBOUNDED,
                          redis_url=redis_url)
    host, port = redis_url.removeprefix("redis://").split("/")[0].rsplit(":", 1)
    async with peak_clients(host, int(port), server) as samples:
        await burst(server)
    assert 2 <= max(samples) <= CAP, samples


@pytest.mark.slow
async def test_burst_of_100_clients_over_sentinel_uses_at_most_8_primary_connections(
    sentinel_set: LocalSet, start_server: StartServer,
) -> None:
    server = start_server(*HASH_UNBOUNDED, "--sentinel", sentinel_set.sentinel_arg,
                          "--sentinel-master", sentinel_set.master_name,
                          "--redis-max-connections", str(CAP))
    host, port = sentinel_set.primary_address()
    async with peak_clients(host, port, server) as samples:
        await burst(server)  # every send WAITs for both replicas: long holds
    assert 2 <= max(samples) <= CAP + OTHER_CLIENTS, samples
