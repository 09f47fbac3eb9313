"""SIGKILL the primary under load: the longest gap in oks, and no acked message lost.

Receivers do not ack during this step, so every message the server
acknowledged must still be in its recipient's inbox afterwards: each inbox
is read with fetch (paging with ack), and every acked msg_id is looked up.
"""

from __future__ import annotations

import bisect
import itertools
import time
from typing import Any

from websockets.asyncio.client import connect

from bench.cluster import Cluster
from bench.drivers import chat_request
from bench.loadgen import Plan
from bench.runner import run_step


def run(cluster: Cluster, plan: Plan, *, kill_after_s: float) -> dict[str, Any]:
    killed: dict[str, Any] = {}

    def on_tick(elapsed: float) -> None:
        if not killed and elapsed >= kill_after_s:
            primary = cluster.local.primary_address()
            killed["at"] = time.monotonic()
            killed["node"] = f"{primary[0]}:{primary[1]}"
            cluster.local.kill_node(cluster.local.node_index(primary))

    step = run_step(plan, "failover", on_tick=on_tick)
    raw = step.pop("raw")
    out: dict[str, Any] = {"step": step, "killed": killed.get("node"),
                           "down_after_ms": cluster.local.down_after_ms, "acked": raw["acked"]}
    if not killed:
        out["gap_s"] = None
        return out
    times = sorted(raw["ok_times"])
    at = bisect.bisect_left(times, killed["at"])
    after = times[at] if at < len(times) else None
    # The gap is the longest stretch without any ok from the last ok before
    # the kill on: sends already durable when the primary died are still
    # answered right after the kill, so "first ok after the kill" says
    # nothing; the outage shows as the longest silence that follows.
    tail = times[max(0, at - 1):]
    gaps = [(b - a, a) for a, b in itertools.pairwise(tail)]
    if gaps:
        gap, start = max(gaps)
        out["gap_s"] = round(gap, 3)
        out["gap_starts_after_kill_s"] = round(start - killed["at"], 3)
    else:
        out["gap_s"] = None
    out["kill_to_first_ok_s"] = round(after - killed["at"], 3) if after else None
    return out


async def verify(url: str, plan: Plan, acked: list[str]) -> dict[str, Any]:
    """Read every receiver's inbox (fetch + ack to page); which acked ids are missing."""
    stored: set[str] = set()
    for token, _name in plan.receivers:
        async with connect(url, open_timeout=30, max_size=None) as ws:
            reply = await chat_request(ws, "resume", token=token)
            if not reply["ok"]:
                raise RuntimeError(f"resume for verification failed: {reply}")
            while True:
                page = await chat_request(ws, "fetch", limit=1000)
                messages = page["messages"]
                stored.update(m["msg_id"] for m in messages)
                if not messages:
                    break
                await chat_request(ws, "ack", seq=messages[-1]["seq"])
    missing = [msg_id for msg_id in acked if msg_id not in stored]
    return {"acked": len(acked), "stored": len(stored), "lost": len(missing),
            "lost_examples": missing[:5]}
