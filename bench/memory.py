"""Server memory per idle connection: VmRSS before and after N connections.

Measured on an instance of its own, so the load steps' buffers and caches
do not blur the difference. Connections are first plain (upgraded, no
session), then each resumes a session (pub/sub subscription, delivery
state), which is what an idle logged-in user costs.
"""

from __future__ import annotations

import asyncio
import gc
import resource
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.drivers import chat_request

SETTLE_S = 1.5


def raise_nofile() -> int:
    """Lift this process's open-file limit to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _open_many(url: str, count: int) -> list[ClientConnection]:
    conns: list[ClientConnection] = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(*(
            connect(url, open_timeout=60, compression=None)
            for _ in range(min(100, count - start))))
        conns.extend(batch)
    return conns


async def measure(url: str, pid: int, counts: list[int], tokens: list[str]) -> list[dict[str, Any]]:
    """For each count: KiB per idle connection, plain and with a session."""
    limit = raise_nofile()
    if max(counts) + 200 > limit:
        raise RuntimeError(f"RLIMIT_NOFILE {limit} is too low for {max(counts)} connections")
    results = []
    for count in counts:
        gc.collect()
        await asyncio.sleep(SETTLE_S)
        before = rss_kib(pid)
        conns = await _open_many(url, count)
        await asyncio.sleep(SETTLE_S)
        plain = rss_kib(pid)
        for start in range(0, count, 200):
            await asyncio.gather(*(
                chat_request(ws, "resume", token=tokens[(start + i) % len(tokens)])
                for i, ws in enumerate(conns[start:start + 200])))
        await asyncio.sleep(SETTLE_S)
        session = rss_kib(pid)
        results.append({
            "connections": count, "rss_before_kib": before, "rss_plain_kib": plain,
            "rss_session_kib": session,
            "kib_per_conn_plain": round((plain - before) / count, 2),
            "kib_per_conn_session": round((session - before) / count, 2),
        })
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
        await asyncio.sleep(SETTLE_S)
    return results
