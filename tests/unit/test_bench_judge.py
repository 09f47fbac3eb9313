"""The benchmark's verdicts and report from step summaries (bench/judge.py,
bench/report.py): both throughput definitions, ratios and the CPU table."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.judge import judge
from bench.search import Rule, keeps_up

RULE = Rule(slo_ms=250)


def step(kind: str, rate: float | None, delivered_per_s: float, p99: float, *,
         phase: str = "fixed", errors: int = 0, cpu_total: float = 0.0) -> dict[str, Any]:
    offered = None if rate is None else int(rate * 4)
    out: dict[str, Any] = {
        "kind": kind, "mode": "closed" if rate is None else "open", "offered_rate": rate,
        "offered_count": offered, "delivered_in_time": offered, "phase": phase,
        "label": f"{kind} {rate}", "ok_per_s": delivered_per_s,
        "delivered_per_s": delivered_per_s, "errors": {"x": errors} if errors else {},
        "send_ok_ms": {"p50": 1, "p95": 2, "p99": p99 / 2, "max": 3},
        "send_delivered_ms": {"p50": 1, "p95": 2, "p99": p99, "max": 3},
        "cpu": {"delivered": 1000, "cores": 2, "machine_busy_pct": 90.0, "processes": {
            "server bench-a": {"cpu_s": 1.0, "core_pct": 50.0, "cpu_s_per_1k": 1.0}},
            "total": {"cpu_s": cpu_total, "core_pct": 80.0, "cpu_s_per_1k": cpu_total}},
    }
    if rate is not None:
        out["keeps_up"], out["verdict"] = keeps_up(out, RULE)
    return out


def run_result() -> dict[str, Any]:
    steps = [
        step("chat", None, 3400, 160, phase="max"),
        step("chat", 1700, 1690, 40), step("chat", 3000, 2990, 60, phase="search"),
        step("chat", 3300, 3250, 400, phase="search", cpu_total=0.44),
        step("chat", 1500, 1500, 30, phase="half"),
        step("peer", None, 700, 420, phase="max"),
        step("peer", 1700, 1695, 22), step("peer", 2545, 717, 20000, errors=4068),
        step("peer", 3054, 2550, 1550), step("peer", 2100, 2090, 90, phase="search"),
    ]
    return {"machine": {"cpu": "x", "cores": 2, "python": "3", "redis": "v"},
            "config": {"clients": 50, "body_bytes": 256, "loop": "uvloop"},
            "steps": steps, "limit": {"sends_per_s": 11000.0},
            "search": {"chat": {"steps": 2, "wall_s": 20.0, "stopped": "step cap (2)"}}}


def test_saturation_is_the_best_clean_delivered_rate_and_sustainable_the_best_kept_up() -> None:
    result = run_result()
    judge(result, RULE)
    tp = result["throughput"]
    assert (tp["chat"]["saturation"], tp["chat"]["sustainable"]) == (3400, 3000)
    assert tp["chat"]["first_failing_above"] == 3300
    # The peer's overloaded 3054/s step counts for saturation (no errors), not sustainable.
    assert (tp["peer"]["saturation"], tp["peer"]["sustainable"]) == (2550, 2100)
    assert result["steps"][tp["peer"]["saturation_step"]]["offered_rate"] == 3054
    assert result["ratios"]["saturation"] == {
        "us_over_peer": 1.333, "us_over_limit": 0.309, "peer_over_limit": 0.232}
    assert result["ratios"]["sustainable"]["us_over_peer"] == 1.429


def test_the_p99_target_is_read_at_the_half_step_and_the_2x_verdict_on_saturation() -> None:
    result = run_result()
    judge(result, RULE)
    targets = result["targets"]
    half = targets["send→ok p99 ≤ 20 ms at half of max load (half of our sustainable max)"]
    assert half == {"measured": "15.0 ms at 1500/s", "met": True}
    verdict = targets["delivered msg/s (durable) ≥ 2× peer (at-most-once), saturation"]
    assert verdict["met"] is False and verdict["measured"].startswith("1.333×")


def test_report_states_both_definitions_and_shows_cpu_per_process() -> None:
    result = run_result()
    judge(result, RULE)
    text = report.markdown(result)
    assert "**saturation**" in text and "**sustainable**" in text
    assert "| saturation msg/s | 3,400 | 2,550 | 1.333 |" in text
    assert "| sustainable msg/s | 3,000 | 2,100 | 1.429 |" in text
    assert "| server bench-a | 50 % / 1.0 |" in text
    assert "Search, ours: 2 steps in 20.0 s, stopped: step cap (2)" in text
    assert "no: p99 400 ms > 250 ms" in text
