"""One benchmark run, in order: limit, ours (max, open-loop steps, the
search for its sustainable rate, half of that), peer (max, the same steps,
its own search, then 1.5×/2×/3× our max), idle memory, failover; with
--cluster, then the same steps of ours and the failover against a local
Redis Cluster (bench/shardset.py), after the Sentinel set is stopped.
Everything on local sets started here, so every ratio compares
numbers taken minutes apart on the same machine under the same background
noise. Every load step records the CPU of every process of the run
(bench/cpu.py)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import failover, limit, memory, profile, report
from bench.cluster import Cluster, Pairs, user_pairs
from bench.judge import judge
from bench.loadgen import Plan
from bench.search import Budget, Rule
from bench.shardset import ShardSet, ShardVictim
from bench.steps import Steps

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
    cluster: bool = False
    rule: Rule = field(default_factory=Rule)
    budget: Budget = field(default_factory=Budget)


def run(cfg: Config) -> Path:
    root = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    cluster = Cluster(root, uvloop=cfg.uvloop)
    run_id = secrets.token_hex(3)
    steps = Steps(cluster, cfg.rule)
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
        senders, receivers = user_pairs(a.url, f"m{run_id}", n)
        rnames = [name for _, name in receivers]
        if cfg.limit:
            result["limit"] = asyncio.run(limit.measure(
                cluster.primary_url(), replicas=2, duration_s=cfg.step_s,
                body_bytes=cfg.body_bytes))
        plan = _plan(cfg, a.url, b.url, senders, receivers, f"m{run_id}")
        spy = profile.Spy(a.proc.pid if a.proc else 0, cfg.profile_s, cfg.out / "profile-a.txt")
        top, rates, result["search"]["chat"] = ours(steps, plan, cfg, "ours", on_tick=spy.tick)
        result["profile"] = spy.finish()
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
                c.url, c.proc.pid if c.proc else 0, cfg.memory_conns,
                [token for token, _ in senders + receivers]))
        if cfg.failover:
            result["failover"] = _failover(failover.SentinelVictim(cluster.local), plan, cfg,
                                           top["delivered_per_s"], f"f{run_id}")
    finally:
        cluster.stop()
    if cfg.cluster:
        result["cluster"] = _on_cluster(cfg, root, run_id, steps.done)
    judge(result, cfg.rule)
    path = report.write(result, cfg.out)
    shutil.rmtree(root, ignore_errors=True)
    return path


def _plan(cfg: Config, a_url: str, b_url: str, senders: Pairs, receivers: Pairs,
          tag: str) -> Plan:
    """The closed-loop step from A's senders to B's receivers; the others vary it."""
    return Plan(kind="chat", sender_url=a_url, receiver_url=b_url, senders=senders,
                receivers=receivers, window=WINDOW, duration_s=cfg.step_s,
                max_count=cfg.max_count, body_bytes=cfg.body_bytes, tag=tag,
                uvloop=cfg.uvloop, in_time_s=cfg.rule.drain_s)


def ours(steps: Steps, plan: Plan, cfg: Config, side: str,
         **kw: Any) -> tuple[dict[str, Any], list[int], dict[str, Any]]:
    """Our steps on one storage: max, open-loop fractions of it, the search
    for the sustainable rate and half of that. (max step, fixed rates, search)."""
    top = steps.run(plan, f"{side} max", "max", **kw)
    rates = [max(1, round(top["delivered_per_s"] * f)) for f in cfg.fractions]
    for i, rate in enumerate(rates):
        steps.run(replace(plan, mode="open", rate=rate, tag=f"{plan.tag}o{i}"),
                  f"{side} {rate}/s", "fixed")
    found = steps.search(plan, side, top["delivered_per_s"], cfg.budget)
    if found["rate"]:
        half = max(1, round(found["rate"] / 2))
        steps.run(replace(plan, mode="open", rate=half, tag=f"{plan.tag}h"),
                  f"{side} half {half}/s", "half")
    return top, rates, found


def _on_cluster(cfg: Config, root: Path, run_id: str,
                done: list[dict[str, Any]]) -> dict[str, Any]:
    """The same steps of ours, then the failover of one shard's primary, on a cluster."""
    shards = ShardSet(root / "cluster", uvloop=cfg.uvloop)
    steps = Steps(shards, cfg.rule, done, kind="cluster")
    try:
        shards.start()
        a, b = shards.start_server("cluster-a"), shards.start_server("cluster-b")
        senders, receivers = user_pairs(a.url, f"c{run_id}", cfg.clients)
        plan = _plan(cfg, a.url, b.url, senders, receivers, f"c{run_id}")
        shard_of = [shards.shard_index_of(name) for _, name in receivers]
        top, _, found = ours(steps, plan, cfg, "cluster")
        out: dict[str, Any] = {
            "shards": len(shards.local.shard_ids), "nodes": len(shards.local.nodes),
            "node_timeout_ms": shards.local.node_timeout_ms, "search": found,
            # Each send writes on its recipient's shard only; senders spread evenly.
            "share": {str(i): shard_of.count(i) / cfg.clients for i in sorted(set(shard_of))}}
        if cfg.failover:
            victim = ShardVictim(shards, max(set(shard_of), key=shard_of.count))
            out["failover"] = _failover(victim, plan, cfg, top["delivered_per_s"],
                                        f"cf{run_id}")
        return out
    finally:
        shards.stop()


def _failover(victim: failover.Victim, plan: Plan, cfg: Config, top: float,
              tag: str) -> dict[str, Any]:
    senders, receivers = user_pairs(plan.sender_url, tag, cfg.clients)
    kill_after = max(2.0, cfg.step_s / 2)
    fo_plan = replace(plan, mode="open", rate=max(5, round(top * FAILOVER_LOAD)),
                      senders=senders, receivers=receivers,
                      # Failover (~3-5 s), the old primary back, then long enough to
                      # see a ~10 s rejoin stall if fencing did not work.
                      duration_s=kill_after + (18.0 if cfg.smoke else 24.0),
                      receiver_acks=False, keep_acked=True,
                      tag=tag, max_count=10**7)
    out = failover.run(victim, fo_plan, kill_after_s=kill_after)
    acked = out.pop("acked")
    out["verify"] = asyncio.run(failover.verify(plan.receiver_url, fo_plan, acked))
    return out
