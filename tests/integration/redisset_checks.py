"""What the tests of deploy/redis-sentinel's local set share: its CLI as the README
spells it, clients of its nodes, a write that waits for the replicas, and
whether its processes are gone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import redis

from deploy.redis_sentinel.sentinelset import LocalSet

#: The CLI as the README spells it, run from the repository root (cwd=ROOT).
REDISSET = [sys.executable, "-m", "deploy.redis_sentinel.redisset"]
Address = tuple[str, int]


def client(address: Address, password: str | None = None) -> redis.Redis:
    return redis.Redis(host=address[0], port=address[1], password=password,
                       decode_responses=True, socket_timeout=5)


def replicas_of(local: LocalSet, primary: Address) -> list[Address]:
    return [n.address for n in local.nodes if n.address != primary and n.alive()]


def write_replicated(local: LocalSet, key: str, value: str, replicas: int) -> Address:
    """SET on the primary and WAIT until `replicas` replicas hold it."""
    primary = local.primary_address()
    with client(primary, local.password) as c:
        c.set(key, value)
        assert c.wait(replicas, 5000) >= replicas
    return primary


def wait_value(address: Address, key: str, expected: str, password: str | None = None) -> None:
    deadline = time.monotonic() + 10
    with client(address, password) as c:
        while c.get(key) != expected:
            assert time.monotonic() < deadline, f"{key} never reached {address}"
            time.sleep(0.05)


def dead(pids: dict[str, int]) -> bool:
    return all(not Path(f"/proc/{pid}").exists() or
               Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
               for pid in pids.values())
