"""Sustainable throughput: the highest offered rate a side keeps up with.

One rule for ours and the peer alike (`keeps_up`): an open-loop step keeps
up when it has no errors, at least `min_share` of the messages it offered
were delivered by the end of its schedule plus `drain_s`, and the p99 of
send→delivered (from the *scheduled* send time) is within the SLO.

The search (`next_rate`, pure) brackets that rate from every step of the
side seen so far, fixed steps included: the highest passing rate below the
lowest failing one above it. It grows ×`GROW` while nothing failed above,
halves while nothing passed, then bisects until the bracket is within
`tolerance`. `run` drives it under a wall-time budget and a step cap, and
stops by itself; the result is the highest passing offered rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Growth while no step above the best pass has failed yet.
GROW = 1.5
#: Below this rate (msg/s) the search gives up finding a passing step.
MIN_RATE = 1.0


@dataclass(frozen=True)
class Rule:
    slo_ms: float = 250.0  # send→delivered p99 bound
    min_share: float = 0.98  # delivered in time / offered
    drain_s: float = 1.0  # after the last scheduled send, deliveries still count


@dataclass(frozen=True)
class Budget:
    step_s: float = 4.0  # each search step's schedule length
    total_s: float = 90.0  # wall time for one side's search, setup included
    max_steps: int = 12
    tolerance: float = 0.05  # stop when (fail - pass) / pass is at most this


def keeps_up(step: dict[str, Any], rule: Rule) -> tuple[bool, str]:
    """Whether an open-loop step kept up, and why not."""
    if step.get("mode") != "open" or not step.get("offered_count"):
        return False, "not an open-loop step"
    errors = sum(step["errors"].values())
    if errors:
        return False, f"{errors} errors"
    share = step["delivered_in_time"] / step["offered_count"]
    if share < rule.min_share:
        return False, f"{100 * share:.2f} % delivered in time"
    p99 = step["send_delivered_ms"]["p99"]
    if p99 is None:
        return False, "nothing delivered"
    if p99 > rule.slo_ms:
        return False, f"p99 {p99} ms > {rule.slo_ms:g} ms"
    return True, "keeps up"


Seen = Sequence[tuple[float, bool]]  # (offered rate, kept up)


def bracket(seen: Seen) -> tuple[float | None, float | None]:
    """(highest passing rate, lowest failing rate above it). A failure below
    a pass (noise on shared cores) does not bound the search."""
    passed = max((rate for rate, ok in seen if ok), default=None)
    failed = min((rate for rate, ok in seen
                  if not ok and (passed is None or rate > passed)), default=None)
    return passed, failed


def next_rate(seen: Seen, start: float, tolerance: float) -> float | None:
    """The next offered rate to try, or None when the bracket is tight enough."""
    lo, hi = bracket(seen)
    if lo is None:
        rate = start if hi is None else hi / 2
        if rate < MIN_RATE:
            return None
    elif hi is None:
        rate = lo * GROW
    elif hi - lo <= tolerance * lo:
        return None
    else:
        rate = (lo + hi) / 2
    rate = float(max(MIN_RATE, round(rate)))
    return None if any(rate == r for r, _ in seen) else rate


def sustainable(seen: Seen) -> dict[str, float | None]:
    """The result: highest passing rate, and the failure that bounds it."""
    lo, hi = bracket(seen)
    return {"rate": lo, "first_failing_above": hi}


@dataclass
class Outcome:
    steps: list[dict[str, Any]]  # the search's own steps, in order
    seen: list[tuple[float, bool]]  # seeds then search steps
    stopped: str  # why it ended
    wall_s: float


def run(step_at: Callable[[float], dict[str, Any]], seeds: Sequence[dict[str, Any]],
        start: float, rule: Rule, budget: Budget) -> Outcome:
    """Search with `step_at(rate)` (runs one step, returns its summary)."""
    seen = [(float(s["offered_rate"]), keeps_up(s, rule)[0]) for s in seeds
            if s.get("mode") == "open"]
    steps: list[dict[str, Any]] = []
    began = time.monotonic()
    cost = budget.step_s + 3.0  # until measured: schedule + connect + drain
    stopped = "bracket within tolerance"
    while True:
        rate = next_rate(seen, start, budget.tolerance)
        if rate is None:
            if bracket(seen)[0] is None:
                stopped = "no rate passed"
            break
        if len(steps) >= budget.max_steps:
            stopped = f"step cap ({budget.max_steps})"
            break
        if time.monotonic() - began + cost > budget.total_s:
            stopped = f"time budget ({budget.total_s:g} s)"
            break
        t = time.monotonic()
        step = step_at(rate)
        cost = max(cost, time.monotonic() - t)
        ok = keeps_up(step, rule)[0]
        steps.append(step)
        seen.append((rate, ok))
    return Outcome(steps, seen, stopped, round(time.monotonic() - began, 1))
