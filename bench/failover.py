"""SIGKILL the primary (of the Sentinel set, or of one cluster shard) under
load, then restart it from its own config (it believes it is still the
primary): the longest gap in oks after each event,
and no acked message lost.

Receivers do not ack during this step, so every message the server
acknowledged must still be in its recipient's inbox afterwards: each inbox
is read with fetch (paging with ack), and every acked msg_id is looked up.
"""

from __future__ import annotations

import bisect
import itertools
import time
from typing import Any, Protocol

from websockets.asyncio.client import connect

from bench.drivers import chat_request
from bench.loadgen import Plan
from bench.runner import run_step
from deploy.redis_sentinel.nodes import SetError
from deploy.redis_sentinel.sentinelset import LocalSet

#: The old primary is restarted once this many sends (at most; a slow step
#: waits for one second of its offered load) were acked after the failover
#: was seen (the Sentinels, or the cluster's nodes, named a new primary) ...
REJOIN_AFTER_OKS = 50
#: ... and at least this long after it was seen.
REJOIN_AFTER_FAILOVER_S = 1.0


class Victim(Protocol):
    """The primary the step kills and what tells that it was replaced."""

    #: How long the primary may be silent before a failover starts (ms).
    detect_ms: int

    def kill(self) -> str:
        """SIGKILL the primary now; its "host:port"."""

    def failed_over(self) -> bool:
        """True once another node is the primary."""

    def restart(self) -> None:
        """Start the killed node again from its own config, as an operator would."""

    def affects(self, recipient: str) -> bool:
        """Whether a send to `recipient` needs the killed primary (after the kill)."""


class SentinelVictim:
    """The Sentinel set's primary."""

    def __init__(self, local: LocalSet) -> None:
        self.local = local
        self.detect_ms = local.down_after_ms
        self.index = -1

    def kill(self) -> str:
        primary = self.local.primary_address()
        self.index = self.local.node_index(primary)
        self.local.kill_node(self.index)
        return f"{primary[0]}:{primary[1]}"

    def failed_over(self) -> bool:
        try:
            return self.local.primary_address() != self.local.nodes[self.index].address
        except SetError:
            return False

    def restart(self) -> None:
        # From its own file, which says "primary".
        self.local.nodes[self.index].start()
        self.local.save()

    def affects(self, recipient: str) -> bool:
        return True  # one primary holds everything


def run(victim: Victim, plan: Plan, *, kill_after_s: float) -> dict[str, Any]:
    events: dict[str, Any] = {}
    # A smoke run offers a few sends a second: 50 oks could outlast its step.
    rejoin_after_oks = min(REJOIN_AFTER_OKS, max(5, round(plan.rate or REJOIN_AFTER_OKS)))

    def on_tick(elapsed: float, oks: int) -> None:
        if "killed_at" not in events and elapsed >= kill_after_s:
            events["killed_at"] = time.monotonic()
            events["node"] = victim.kill()
        elif "killed_at" in events and "failed_over_at" not in events:
            if victim.failed_over():
                events["failed_over_at"], events["oks_then"] = time.monotonic(), oks
        elif "failed_over_at" in events and "rejoined_at" not in events \
                and oks - events["oks_then"] >= rejoin_after_oks \
                and time.monotonic() - events["failed_over_at"] >= REJOIN_AFTER_FAILOVER_S:
            events["rejoined_at"] = time.monotonic()
            victim.restart()

    step = run_step(plan, "failover", on_tick=on_tick)
    raw = step.pop("raw")
    out: dict[str, Any] = {"step": step, "killed": events.get("node"),
                           "down_after_ms": victim.detect_ms, "acked": raw["acked"],
                           "gap_s": None, "rejoin_gap_s": None}
    if "killed_at" not in events:
        return out
    # The sends that needed the killed primary: all of them on the Sentinel
    # set, those to the killed shard's users on a cluster (the others go on).
    times = sorted(t for t, msg_id in zip(raw["ok_times"], raw["acked"], strict=True)
                   if victim.affects(plan.senders[_sender_of(msg_id)][1]))
    out["affected_sends"] = len(times)
    if len(times) < len(raw["ok_times"]):
        every = _longest_gap(sorted(raw["ok_times"]), events["killed_at"], None)
        out["gap_all_sends_s"] = every[0] if every else None
    killed, rejoined = events["killed_at"], events.get("rejoined_at")
    if "failed_over_at" in events:
        out["failover_seen_after_kill_s"] = round(events["failed_over_at"] - killed, 3)
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


def _sender_of(msg_id: str) -> int:
    """The sender index in a load generator's msg_id ("{tag}-{sender}-{n}")."""
    return int(msg_id.rsplit("-", 2)[1])


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
