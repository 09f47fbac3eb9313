"""One benchmark run, in order: limit, ours (max, open-loop steps, the
search for its sustainable rate, half of that), peer (max, the same steps,
its own search, then 1.5×/2×/3× our max), idle memory, failover.
Everything on one local HA set started here, so every ratio compares
numbers taken minutes apart on the same machine under the same background
noise. Every load step records the CPU of every process of the run
(bench/cpu.py)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import cpu, failover, limit, memory, profile, report, search
from bench.cluster import Cluster, make_users
from bench.judge import judge
from bench.loadgen import Plan
from bench.runner import run_step
from bench.search import Budget, Rule, keeps_up

#: Sends in flight per sender connection in the closed-loop (max) step.
WINDOW = 4
#: The failover step's offered load, as a fraction of our measured max.
FAILOVER_LOAD = 0.3
#: A search step waits this long after its schedule for replies and deliveries.
SEARCH_DRAIN_S = 2.0


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
    rule: Rule = field(default_factory=Rule)
    budget: Budget = field(default_factory=Budget)


@dataclass
class _Steps:
    """Runs steps, records them with their phase and keeps-up verdict."""

    cluster: Cluster
    rule: Rule
    done: list[dict[str, Any]] = field(default_factory=list)

    def run(self, plan: Plan, label: str, phase: str, **kw: Any) -> dict[str, Any]:
        rewrite_s = self.cluster.rewrite_aofs()
        result = run_step(plan, label, cpu_pids=self.cluster.pid_groups, **kw)
        result.pop("raw")
        result["aof_rewrite_before_s"] = round(rewrite_s, 2)
        result["label"], result["phase"] = label, phase
        if plan.mode == "open":
            result["keeps_up"], result["verdict"] = keeps_up(result, self.rule)
            sys.stderr.write(f"{label}: {result['verdict']}\n")
        self.done.append(result)
        return result

    def search(self, base: Plan, side: str, start: float, budget: Budget) -> dict[str, Any]:
        """The side's sustainable-rate search, seeded by its steps so far."""
        seeds = [s for s in self.done if s["kind"] == base.kind and s["mode"] == "open"]

        def step_at(rate: float) -> dict[str, Any]:
            settled = cpu.wait_quiet(self.cluster.pid_groups)  # queues left by the last step
            plan = replace(base, mode="open", rate=rate, duration_s=budget.step_s,
                           drain_s=SEARCH_DRAIN_S, tag=f"{base.tag}s{len(self.done)}")
            step = self.run(plan, f"{side} search {rate:g}/s", "search")
            step["settle_s"] = settled
            return step

        out = search.run(step_at, seeds, start, self.rule, budget)
        return {"stopped": out.stopped, "wall_s": out.wall_s, "steps": len(out.steps),
                "start": start, **search.sustainable(out.seen)}


def run(cfg: Config) -> Path:
    root = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    cluster = Cluster(root, uvloop=cfg.uvloop)
    run_id = secrets.token_hex(3)
    steps = _Steps(cluster, cfg.rule)
    result: dict[str, Any] = {
        "machine": report.machine(), "steps": steps.done, "search": {},
        "config": {"clients": cfg.clients, "body_bytes": cfg.body_bytes, "step_s": cfg.step_s,
                   "window": WINDOW, "loop": "uvloop" if cfg.uvloop else "asyncio",
                   "smoke": cfg.smoke, "search_step_s": cfg.budget.step_s,
                   "search_budget_s": cfg.budget.total_s,
                   "search_max_steps": cfg.budget.max_steps},
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
                    body_bytes=cfg.body_bytes, tag=f"m{run_id}", uvloop=cfg.uvloop,
                    in_time_s=cfg.rule.drain_s)
        spy = profile.Spy(a.proc.pid if a.proc else 0, cfg.profile_s, cfg.out / "profile-a.txt")
        top = steps.run(plan, "ours max", "max", on_tick=spy.tick)
        result["profile"] = spy.finish()
        rates = [max(1, round(top["delivered_per_s"] * f)) for f in cfg.fractions]
        for i, rate in enumerate(rates):
            steps.run(replace(plan, mode="open", rate=rate, tag=f"o{i}{run_id}"),
                      f"ours {rate}/s", "fixed")
        found = steps.search(plan, "ours", top["delivered_per_s"], cfg.budget)
        result["search"]["chat"] = found
        if found["rate"]:
            half = max(1, round(found["rate"] / 2))
            steps.run(replace(plan, mode="open", rate=half, tag=f"h{run_id}"),
                      f"ours half {half}/s", "half")
        if cfg.peer:
            urls = [cluster.start_peer("peer-a"), cluster.start_peer("peer-b")]
            peer = replace(plan, kind="peer", sender_url=urls[0], receiver_url=urls[1],
                           senders=[("", r) for r in rnames], receivers=[("", r) for r in rnames],
                           tag=f"p{run_id}")
            peer_top = steps.run(peer, "peer max", "max")
            for i, rate in enumerate(rates):
                steps.run(replace(peer, mode="open", rate=rate, tag=f"q{i}{run_id}"),
                          f"peer {rate}/s", "fixed")
            # Searched right after the same fixed steps as ours, before the heavy
            # overload below, whose queues could still weigh on the first search step.
            result["search"]["peer"] = steps.search(peer, "peer", peer_top["delivered_per_s"],
                                                    cfg.budget)
            # Beyond our max too: the peer's saturation may lie above ours.
            extra = [] if cfg.smoke else [round(top["delivered_per_s"] * f) for f in (1.5, 2, 3)]
            for i, rate in enumerate(extra):
                steps.run(replace(peer, mode="open", rate=rate, tag=f"x{i}{run_id}"),
                          f"peer {rate}/s", "fixed")
            cluster.stop_peers()
        if cfg.memory:
            c = cluster.start_server("bench-mem")
            result["memory"] = asyncio.run(memory.measure(
                c.url, c.proc.pid if c.proc else 0, cfg.memory_conns, tokens))
        if cfg.failover:
            result["failover"] = _failover(cluster, plan, cfg, top["delivered_per_s"], run_id)
    finally:
        cluster.stop()
    judge(result, cfg.rule)
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
                      # Failover (~3-5 s), the old primary back, then long enough to
                      # see a ~10 s rejoin stall if fencing did not work.
                      duration_s=kill_after + (18.0 if cfg.smoke else 24.0),
                      receiver_acks=False, keep_acked=True,
                      tag=f"f{run_id}", max_count=10**7)
    out = failover.run(cluster, fo_plan, kill_after_s=kill_after)
    acked = out.pop("acked")
    out["verify"] = asyncio.run(failover.verify(plan.receiver_url, fo_plan, acked))
    return out
