"""SIGKILL the primary under load, then restart it from its own config (it
believes it is still the primary): the longest gap in oks after each event,
and no acked message lost.

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
from deploy.redis_sentinel.nodes import SetError

#: The old primary is restarted once this many sends (at most; a slow step
#: waits for one second of its offered load) were acked after the Sentinels
#: named a new primary (the failover's outage is over) ...
REJOIN_AFTER_OKS = 50
#: ... and at least this long after they named it.
REJOIN_AFTER_FAILOVER_S = 1.0


def run(cluster: Cluster, plan: Plan, *, kill_after_s: float) -> dict[str, Any]:
    local = cluster.local
    events: dict[str, Any] = {}
    # A smoke run offers a few sends a second: 50 oks could outlast its step.
    rejoin_after_oks = min(REJOIN_AFTER_OKS, max(5, round(plan.rate or REJOIN_AFTER_OKS)))

    def on_tick(elapsed: float, oks: int) -> None:
        if "killed_at" not in events and elapsed >= kill_after_s:
            primary = local.primary_address()
            events["killed_at"] = time.monotonic()
            events["node"] = f"{primary[0]}:{primary[1]}"
            events["index"] = local.node_index(primary)
            local.kill_node(events["index"])
        elif "killed_at" in events and "failed_over_at" not in events:
            try:
                moved = local.primary_address() != local.nodes[events["index"]].address
            except SetError:
                moved = False
            if moved:
                events["failed_over_at"], events["oks_then"] = time.monotonic(), oks
        elif "failed_over_at" in events and "rejoined_at" not in events \
                and oks - events["oks_then"] >= rejoin_after_oks \
                and time.monotonic() - events["failed_over_at"] >= REJOIN_AFTER_FAILOVER_S:
            # As an operator restarts it: from its own file, which says "primary".
            events["rejoined_at"] = time.monotonic()
            local.nodes[events["index"]].start()
            local.save()

    step = run_step(plan, "failover", on_tick=on_tick)
    raw = step.pop("raw")
    out: dict[str, Any] = {"step": step, "killed": events.get("node"),
                           "down_after_ms": local.down_after_ms, "acked": raw["acked"],
                           "gap_s": None, "rejoin_gap_s": None}
    if "killed_at" not in events:
        return out
    times = sorted(raw["ok_times"])
    killed, rejoined = events["killed_at"], events.get("rejoined_at")
    gap = _longest_gap(times, killed, rejoined)
    if gap is not None:
        out["gap_s"], out["gap_starts_after_kill_s"] = gap[0], round(gap[1] - killed, 3)
    at = bisect.bisect_left(times, killed)
    out["kill_to_first_ok_s"] = round(times[at] - killed, 3) if at < len(times) else None
    if rejoined is not None:
        gap = _longest_gap(times, rejoined, None)
        out["rejoin_gap_s"] = gap[0] if gap else None
        out["rejoin_after_kill_s"] = round(rejoined - killed, 3)
    return out


def _longest_gap(times: list[float], since: float,
                 until: float | None) -> tuple[float, float] | None:
    """(longest stretch without an ok, its start) from the last ok before
    `since` to `until`: sends already durable when the event happened are
    still answered right after it, so "first ok after" says nothing; the
    outage shows as the longest silence that follows."""
    at = bisect.bisect_left(times, since)
    end = len(times) if until is None else bisect.bisect_left(times, until)
    tail = times[max(0, at - 1):end]
    gaps = [(b - a, a) for a, b in itertools.pairwise(tail)]
    if not gaps:
        return None
    gap, start = max(gaps)
    return round(gap, 3), start


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
