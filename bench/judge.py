"""A run's verdicts: each side's two throughputs, the ratios, the targets.

- **saturation**: the best delivered msg/s of any error-free step of the
  side, whatever its latency (an overloaded step whose queues grow still
  counts).
- **sustainable**: the highest offered msg/s of any open-loop step of the
  side that keeps up (bench/search.py: no errors, ≥ 98 % delivered by the
  end of the schedule plus a short drain, send→delivered p99 ≤ the SLO).

The "≥ 2× the peer" verdict stays on saturation (the issue asks for
delivered msg/s, with no latency bound); the sustainable ratio is reported
next to it. The p99 target is read at half of our sustainable max, a step
of its own (phase "half").
"""

from __future__ import annotations

from typing import Any

from bench import scaling
from bench.search import Rule, bracket
from bench.stats import ratio

SIDES = {"chat": "ours", "peer": "peer"}
#: Issue 19: a node coming back must not stall writes longer than this.
REJOIN_GAP_S = 1.5

#: The primary's CPU-seconds per 1,000 delivered at our saturation step in
#: the run of docs/benchmarks.md before the dedupe window (243df5b); issue 14
#: wants at most half of it.
PRIMARY_CPU_PER_1K_BEFORE = 0.0604


def primary_cpu_per_1k(step: dict[str, Any] | None) -> float | None:
    """CPU-seconds of the Redis primary per 1,000 delivered messages in `step`."""
    processes = ((step or {}).get("cpu") or {}).get("processes", {})
    return next((x["cpu_s_per_1k"] for name, x in processes.items() if "(primary)" in name),
                None)


def throughput(steps: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Both rates of a side, and the indexes of the steps that gave them."""
    clean = [i for i, s in enumerate(steps) if s["kind"] == kind and not s["errors"]]
    sat = max(clean, key=lambda i: steps[i]["delivered_per_s"], default=None)
    seen = [(float(s["offered_rate"]), bool(s.get("keeps_up"))) for s in steps
            if s["kind"] == kind and s["mode"] == "open"]
    rate, above = bracket(seen)
    sus = max((i for i, s in enumerate(steps) if s["kind"] == kind and s.get("keeps_up")
               and s["offered_rate"] == rate), default=None)
    return {"saturation": None if sat is None else steps[sat]["delivered_per_s"],
            "saturation_step": sat,
            "sustainable": rate, "sustainable_step": sus, "first_failing_above": above}


def _n(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}"


def _ratios(us: float | None, peer: float | None, limit: float | None) -> dict[str, Any]:
    return {"us_over_peer": ratio(us, peer), "us_over_limit": ratio(us, limit),
            "peer_over_limit": ratio(peer, limit)}


def judge(result: dict[str, Any], rule: Rule) -> None:
    """Adds "throughput", "ratios" and "targets" to `result`."""
    steps = result["steps"]
    tp = {kind: throughput(steps, kind) for kind in SIDES}
    tp["rule"] = {"slo_ms": rule.slo_ms, "min_share": rule.min_share, "drain_s": rule.drain_s}
    result["throughput"] = tp
    limit = (result.get("limit") or {}).get("sends_per_s")
    ratios = {d: _ratios(tp["chat"][d], tp["peer"][d], limit)
              for d in ("saturation", "sustainable")}
    result["ratios"] = ratios
    targets: dict[str, Any] = {}
    sat, sus = ratios["saturation"]["us_over_peer"], ratios["sustainable"]["us_over_peer"]
    targets["delivered msg/s (durable) ≥ 2× peer (at-most-once), saturation"] = {
        "measured": f"{sat}× ({_n(tp['chat']['saturation'])} vs "
                    f"{_n(tp['peer']['saturation'])} msg/s)",
        "met": None if sat is None else sat >= 2}
    targets[f"the same, sustainable (p99 ≤ {rule.slo_ms:g} ms); for information"] = {
        "measured": f"{sus}× ({_n(tp['chat']['sustainable'])} vs "
                    f"{_n(tp['peer']['sustainable'])} msg/s)",
        "met": None if sus is None else sus >= 2}
    half = next((s for s in steps if s["kind"] == "chat" and s.get("phase") == "half"), None)
    p99 = half["send_ok_ms"]["p99"] if half else None
    where = f" at {half['offered_rate']:g}/s" if half else ""
    targets["send→ok p99 ≤ 20 ms at half of max load (half of our sustainable max)"] = {
        "measured": f"{p99} ms{where}", "met": None if p99 is None else p99 <= 20}
    sat_step = steps[tp["chat"]["saturation_step"]] if tp["chat"]["saturation_step"] is not None \
        else None
    primary = primary_cpu_per_1k(sat_step)
    bound_cpu = PRIMARY_CPU_PER_1K_BEFORE / 2
    targets[f"primary CPU per 1,000 delivered ≤ half of before ({bound_cpu:g} CPU-s, "
            "saturation step)"] = {
        "measured": f"{primary} CPU-s (before: {PRIMARY_CPU_PER_1K_BEFORE})",
        "met": None if primary is None else primary <= bound_cpu}
    fo = result.get("failover") or {}
    gap, bound = fo.get("gap_s"), (fo.get("down_after_ms") or 0) / 1000 + 2
    lost = (fo.get("verify") or {}).get("lost")
    targets[f"failover gap ≤ down-after + 2 s ({bound:g} s), no acked loss"] = {
        "measured": f"{gap} s, lost {lost}",
        "met": None if gap is None else (gap <= bound and lost == 0)}
    rejoin = fo.get("rejoin_gap_s")
    targets[f"rejoin gap ≤ {REJOIN_GAP_S:g} s (old primary restarted from its own config)"] = {
        "measured": f"{rejoin} s", "met": None if rejoin is None else rejoin <= REJOIN_GAP_S}
    if result.get("cluster"):
        _judge_cluster(result, targets, primary)
    mem = result.get("memory") or []
    worst = max((x["kib_per_conn_session"] for x in mem), default=None)
    targets["≤ 20 KiB per idle connection"] = {
        "measured": f"{worst} KiB (logged in, worst count)",
        "met": None if worst is None else worst <= 20}
    result["targets"] = targets


def _judge_cluster(result: dict[str, Any], targets: dict[str, Any],
                   sentinel_primary: float | None) -> None:
    """The cluster side (bench --cluster): its two throughputs, the scaling
    model from its saturation step, its failover (for information: the
    cluster's own failover, cluster-node-timeout instead of down-after)."""
    cluster, steps = result["cluster"], result["steps"]
    tp = throughput(steps, "cluster")
    result["throughput"]["cluster"] = tp
    sat = steps[tp["saturation_step"]] if tp["saturation_step"] is not None else None
    cluster["model"] = scaling.model(sat, cluster["share"], cluster["shards"], sentinel_primary)
    half = next((s for s in steps if s["kind"] == "cluster" and s.get("phase") == "half"), None)
    p99 = half["send_ok_ms"]["p99"] if half else None
    targets["cluster: send→ok p99 at half its sustainable max; for information"] = {
        "measured": f"{p99} ms" + (f" at {half['offered_rate']:g}/s" if half else ""),
        "met": None}
    fo = cluster.get("failover") or {}
    gap, bound = fo.get("gap_s"), (fo.get("down_after_ms") or 0) / 1000 + 2
    lost = (fo.get("verify") or {}).get("lost")
    targets[f"cluster: failover gap ≤ node-timeout + 2 s ({bound:g} s), no acked loss"] = {
        "measured": f"{gap} s, lost {lost}",
        "met": None if gap is None else (gap <= bound and lost == 0)}
