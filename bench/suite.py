"""One benchmark run, in order: limit, ours (max, then open-loop steps),
peer (same steps), idle memory, failover. Everything on one local HA set
started here, so every ratio compares numbers taken minutes apart on the
same machine under the same background noise."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import failover, limit, memory, profile, report
from bench.cluster import Cluster, make_users
from bench.loadgen import Plan
from bench.runner import run_step
from bench.stats import ratio

#: Sends in flight per sender connection in the closed-loop (max) step.
WINDOW = 4
#: The failover step's offered load, as a fraction of our measured max.
FAILOVER_LOAD = 0.3


@dataclass(frozen=True)
class Config:
    out: Path
    smoke: bool
    clients: int
    body_bytes: int
    step_s: float
    max_count: int
    fractions: list[float]
    memory_conns: list[int]
    profile_s: float
    uvloop: bool
    peer: bool
    limit: bool
    memory: bool
    failover: bool


def _step(plan: Plan, label: str, steps: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    result = run_step(plan, label, **kw)
    raw = result.pop("raw")
    steps.append(result)
    result["_raw"] = raw
    return result


def run(cfg: Config) -> Path:
    root = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    cluster = Cluster(root, uvloop=cfg.uvloop)
    run_id = secrets.token_hex(3)
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "machine": report.machine(), "steps": steps,
        "config": {"clients": cfg.clients, "body_bytes": cfg.body_bytes, "step_s": cfg.step_s,
                   "window": WINDOW, "loop": "uvloop" if cfg.uvloop else "asyncio",
                   "smoke": cfg.smoke},
    }
    try:
        cluster.start()
        a, b = cluster.start_server("bench-a"), cluster.start_server("bench-b")
        n = cfg.clients
        rnames = [f"r{run_id}x{i}" for i in range(n)]
        tokens = asyncio.run(make_users(a.url, [f"s{run_id}x{i}" for i in range(n)] + rnames))
        if cfg.limit:
            result["limit"] = asyncio.run(limit.measure(
                cluster.primary_url(), replicas=2, duration_s=cfg.step_s,
                body_bytes=cfg.body_bytes))
        plan = Plan(kind="chat", sender_url=a.url, receiver_url=b.url,
                    senders=list(zip(tokens[:n], rnames, strict=True)),
                    receivers=list(zip(tokens[n:], rnames, strict=True)),
                    window=WINDOW, duration_s=cfg.step_s, max_count=cfg.max_count,
                    body_bytes=cfg.body_bytes, tag=f"m{run_id}", uvloop=cfg.uvloop)
        spy = profile.Spy(a.proc.pid if a.proc else 0, cfg.profile_s, cfg.out / "profile-a.txt")
        top = _step(plan, "ours max", steps, on_tick=spy.tick)
        result["profile"] = spy.finish()
        rates = [max(1, round(top["delivered_per_s"] * f)) for f in cfg.fractions]
        for i, rate in enumerate(rates):
            _step(replace(plan, mode="open", rate=rate, tag=f"o{i}{run_id}"),
                  f"ours {rate}/s", steps)
        if cfg.peer:
            urls = [cluster.start_peer("peer-a"), cluster.start_peer("peer-b")]
            peer = replace(plan, kind="peer", sender_url=urls[0], receiver_url=urls[1],
                           senders=[("", r) for r in rnames], receivers=[("", r) for r in rnames],
                           tag=f"p{run_id}")
            _step(peer, "peer max", steps)
            # Beyond our max too: the peer's own max may lie above ours.
            extra = [] if cfg.smoke else [round(top["delivered_per_s"] * f) for f in (1.5, 2, 3)]
            for i, rate in enumerate(rates + extra):
                _step(replace(peer, mode="open", rate=rate, tag=f"q{i}{run_id}"),
                      f"peer {rate}/s", steps)
            cluster.stop_peers()
        if cfg.memory:
            c = cluster.start_server("bench-mem")
            result["memory"] = asyncio.run(memory.measure(
                c.url, c.proc.pid if c.proc else 0, cfg.memory_conns, tokens))
        if cfg.failover:
            result["failover"] = _failover(cluster, plan, cfg, top["delivered_per_s"], run_id)
    finally:
        cluster.stop()
    for step in steps:
        step.pop("_raw", None)
    result["ratios"], result["targets"] = _judge(result, cfg)
    path = report.write(result, cfg.out)
    shutil.rmtree(root, ignore_errors=True)
    return path


def _failover(cluster: Cluster, plan: Plan, cfg: Config, top: float,
              run_id: str) -> dict[str, Any]:
    n = cfg.clients
    a_url = plan.sender_url
    rnames = [f"f{run_id}r{i}" for i in range(n)]
    tokens = asyncio.run(make_users(a_url, [f"f{run_id}s{i}" for i in range(n)] + rnames))
    kill_after = max(2.0, cfg.step_s / 2)
    fo_plan = replace(plan, mode="open", rate=max(5, round(top * FAILOVER_LOAD)),
                      senders=list(zip(tokens[:n], rnames, strict=True)),
                      receivers=list(zip(tokens[n:], rnames, strict=True)),
                      duration_s=kill_after + (6.0 if cfg.smoke else 12.0),
                      receiver_acks=False, keep_acked=True,
                      tag=f"f{run_id}", max_count=10**7)
    out = failover.run(cluster, fo_plan, kill_after_s=kill_after)
    acked = out.pop("acked")
    out["verify"] = asyncio.run(failover.verify(plan.receiver_url, fo_plan, acked))
    return out


def _judge(result: dict[str, Any], cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    steps = result["steps"]
    ours = next((s for s in steps if s["kind"] == "chat" and s["mode"] == "closed"), None)
    # Max = the best delivered rate of any step without errors: the peer's
    # closed-loop step can fall below its open-loop steps (see docs).
    us_rate, peer_rate = _best(steps, "chat"), _best(steps, "peer")
    limit_rate = (result.get("limit") or {}).get("sends_per_s")
    ratios = {"us_over_peer": ratio(us_rate, peer_rate),
              "us_over_limit": ratio(us_rate, limit_rate),
              "peer_over_limit": ratio(peer_rate, limit_rate)}
    targets: dict[str, Any] = {}
    r = ratios["us_over_peer"]
    targets["delivered msg/s (durable) ≥ 2× peer (at-most-once)"] = {
        "measured": f"{r}×", "met": None if r is None else r >= 2}
    half = [s for s in steps if s["kind"] == "chat" and s["mode"] == "open"
            and ours and abs(s["offered_rate"] - 0.5 * ours["delivered_per_s"]) < 2]
    p99 = half[0]["send_ok_ms"]["p99"] if half else None
    targets["send→ok p99 ≤ 20 ms at half of max load"] = {
        "measured": f"{p99} ms", "met": None if p99 is None else p99 <= 20}
    fo = result.get("failover") or {}
    gap, bound = fo.get("gap_s"), (fo.get("down_after_ms") or 0) / 1000 + 2
    lost = (fo.get("verify") or {}).get("lost")
    targets[f"failover gap ≤ down-after + 2 s ({bound:g} s), no acked loss"] = {
        "measured": f"{gap} s, lost {lost}",
        "met": None if gap is None else (gap <= bound and lost == 0)}
    mem = result.get("memory") or []
    worst = max((x["kib_per_conn_session"] for x in mem), default=None)
    targets["≤ 20 KiB per idle connection"] = {
        "measured": f"{worst} KiB (logged in, worst count)",
        "met": None if worst is None else worst <= 20}
    return ratios, targets


def _best(steps: list[dict[str, Any]], kind: str) -> float | None:
    rates = [s["delivered_per_s"] for s in steps if s["kind"] == kind and not s["errors"]]
    return max(rates, default=None)
