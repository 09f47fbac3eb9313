"""A bench run's load steps, recorded in order with their phase and verdict."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bench import cpu, search
from bench.loadgen import Plan
from bench.runner import run_step
from bench.search import Budget, Rule, keeps_up

#: A search step waits this long after its schedule for replies and deliveries.
SEARCH_DRAIN_S = 2.0


class Processes(Protocol):
    """What a step needs of the processes it measures (the Sentinel set's
    bench.cluster.Cluster, the cluster's bench.shardset.ShardSet)."""

    def rewrite_aofs(self) -> float: ...

    def pid_groups(self) -> dict[str, list[int]]: ...


@dataclass
class Steps:
    """Runs steps, records them with their phase and keeps-up verdict.
    `kind` names the side in the record when it is not the plan's own kind
    (the cluster's steps drive our server, kind "chat", but are "cluster")."""

    cluster: Processes
    rule: Rule
    done: list[dict[str, Any]] = field(default_factory=list)
    kind: str | None = None

    def run(self, plan: Plan, label: str, phase: str, **kw: Any) -> dict[str, Any]:
        rewrite_s = self.cluster.rewrite_aofs()
        result = run_step(plan, label, cpu_pids=self.cluster.pid_groups, **kw)
        result.pop("raw")
        result["aof_rewrite_before_s"] = round(rewrite_s, 2)
        result["label"], result["phase"] = label, phase
        result["kind"] = self.kind or result["kind"]
        if plan.mode == "open":
            result["keeps_up"], result["verdict"] = keeps_up(result, self.rule)
            sys.stderr.write(f"{label}: {result['verdict']}\n")
        self.done.append(result)
        return result

    def search(self, base: Plan, side: str, start: float, budget: Budget) -> dict[str, Any]:
        """The side's sustainable-rate search, seeded by its steps so far."""
        kind = self.kind or base.kind
        seeds = [s for s in self.done if s["kind"] == kind and s["mode"] == "open"]

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
