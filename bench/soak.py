"""`python -m bench --soak MINUTES`: is memory bounded by what users keep?

Open-loop load at half our sustainable rate (searched first, unless
`--rate` is given) for MINUTES against servers with a short dedupe window,
receivers acking everything. Every SAMPLE_S the primary's used_memory, each
server's RSS and the send→delivered p99 of the last interval are sampled.
After the load, one window (plus slack) with no traffic lets the dedupe
records expire; then used_memory must be back near its level before the
load: retained bytes per acked message ~0.

Verdicts (docs/benchmarks.md): memory and p99 flat after the first window
(the least-squares trend over the rest moves at most 5 % of its mean), and
used_memory after the window within 1 MB of the level before the load.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import redis

from bench import report, search
from bench.cluster import Cluster, user_pairs
from bench.loadgen import Plan
from bench.memory import rss_kib
from bench.runner import run_step
from bench.search import Budget, Rule, keeps_up
from bench.stats import percentile

SAMPLE_S = 10.0
#: Flat: the trend over the samples after the first window moves at most this share.
MAX_DRIFT = 0.05
#: Back: used_memory after the window within this of its level before the load.
MAX_RETAINED_BYTES = 1024 * 1024
#: After the load, the expiry lag allowed beyond one window (docs/operations.md).
SLACK_S = 10.0


@dataclass(frozen=True)
class SoakConfig:
    out: Path
    minutes: float
    window_s: int
    rate: float | None
    clients: int
    body_bytes: int
    uvloop: bool
    rule: Rule
    budget: Budget


def trend_drift(points: Sequence[tuple[float, float]]) -> float | None:
    """How far the trend of `points` moves across them, as a share of their
    median (0.05: 5 %); None with fewer than 3 points. The trend is the
    Theil-Sen slope (median of the pairwise slopes), so one spike from a
    neighbour on a shared machine does not decide it; growth does."""
    if len(points) < 3:
        return None
    slopes = [(v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points)
              for t2, v2 in points[i + 1:] if t2 != t1]
    level = statistics.median(v for _, v in points)
    if not slopes or level == 0:
        return None
    span = points[-1][0] - points[0][0]
    return round(abs(statistics.median(slopes) * span / level), 4)


def interval_p99(arrivals: list[float], latency_ms: list[float], start: float,
                 step: float) -> list[tuple[float, float | None]]:
    """(seconds since start, p99 ms) per interval of `step` seconds, by arrival time."""
    buckets: dict[int, list[float]] = {}
    for at, ms in zip(arrivals, latency_ms, strict=True):
        buckets.setdefault(int((at - start) // step), []).append(ms)
    return [((i + 1) * step, percentile(sorted(buckets.get(i, [])), 99) if i in buckets
             else None) for i in range(max(buckets, default=-1) + 1)]


class Sampler:
    """used_memory of the primary and RSS of each server, every SAMPLE_S."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.samples: list[dict[str, Any]] = []
        self.next_at = 0.0

    def memory(self) -> dict[str, int]:
        client = redis.Redis.from_url(self.cluster.primary_url(), socket_timeout=5)
        try:
            info = client.info("memory")
        finally:
            client.close()
        return {"used_memory": int(info["used_memory"]),
                "used_memory_dataset": int(info["used_memory_dataset"])}

    def take(self, phase: str) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + SAMPLE_S
        rss = {name: rss_kib(s.proc.pid) * 1024 for name, s in self.cluster.servers.items()
               if s.proc is not None and s.proc.poll() is None}
        self.samples.append({"at": now, "phase": phase, **self.memory(), "rss": rss})


def find_rate(cluster: Cluster, plan: Plan, cfg: SoakConfig) -> dict[str, Any]:
    """Our sustainable rate, searched as `make bench` does (shorter budget)."""
    top = run_step(plan, "soak: ours max", cpu_pids=cluster.pid_groups)

    def step_at(rate: float) -> dict[str, Any]:
        step = run_step(replace(plan, mode="open", rate=rate, duration_s=cfg.budget.step_s,
                                drain_s=2.0, tag=f"{plan.tag}s{int(rate)}"),
                        f"soak: search {rate:g}/s")
        step["keeps_up"], step["verdict"] = keeps_up(step, cfg.rule)
        sys.stderr.write(f"soak: search {rate:g}/s: {step['verdict']}\n")
        return step

    out = search.run(step_at, [], top["delivered_per_s"], cfg.rule, cfg.budget)
    return {"max_delivered_per_s": top["delivered_per_s"], **search.sustainable(out.seen)}


def run(cfg: SoakConfig) -> Path:
    root = Path(tempfile.mkdtemp(prefix="chat-soak-"))
    cluster = Cluster(root, uvloop=cfg.uvloop)
    run_id = secrets.token_hex(3)
    result: dict[str, Any] = {"config": {"minutes": cfg.minutes, "dedupe_window_s": cfg.window_s,
                                         "clients": cfg.clients, "body_bytes": cfg.body_bytes,
                                         "sample_s": SAMPLE_S}}
    try:
        cluster.start()
        flags = ["--dedupe-window-s", str(cfg.window_s)]
        a = cluster.start_server("soak-a", extra=flags)
        b = cluster.start_server("soak-b", extra=flags)
        senders, receivers = user_pairs(a.url, f"k{run_id}", cfg.clients)
        plan = Plan(kind="chat", sender_url=a.url, receiver_url=b.url,
                    senders=senders, receivers=receivers,
                    window=4, duration_s=8.0, max_count=10**9, body_bytes=cfg.body_bytes,
                    tag=f"k{run_id}", uvloop=cfg.uvloop, in_time_s=cfg.rule.drain_s,
                    keep_acked=False)
        sampler = Sampler(cluster)
        if cfg.rate is None:
            found = find_rate(cluster, plan, cfg)
            result["search"] = found
            rate = max(1.0, round((found["rate"] or found["max_delivered_per_s"]) / 2))
            # Records of the search expire before the baseline is taken.
            _idle(sampler, cfg.window_s + SLACK_S, "search records expire")
        else:
            rate = cfg.rate
        result["rate"] = rate
        cluster.rewrite_aofs()
        before = sampler.memory()
        result["before"] = before
        sampler.next_at = 0.0
        started = time.monotonic()
        load = replace(plan, mode="open", rate=rate, duration_s=cfg.minutes * 60,
                       tag=f"soak{run_id}")
        step = run_step(load, f"soak {rate:g}/s for {cfg.minutes:g} min",
                        on_tick=lambda _elapsed: sampler.take("load"),
                        cpu_pids=cluster.pid_groups, keep_samples=True)
        raw = step.pop("raw")
        _idle(sampler, cfg.window_s + SLACK_S, "after")
        cluster.rewrite_aofs()
        after = sampler.memory()
        result.update(after=after, step=step, samples=_relative(sampler.samples, started))
        result["p99"] = interval_p99(raw["arrivals"], raw["delivered_ms"], started, SAMPLE_S)
        result["verdicts"] = verdicts(result, cfg.window_s, step["ok"])
    finally:
        cluster.stop()
    path = write(result, cfg.out)
    shutil.rmtree(root, ignore_errors=True)
    return path


def _idle(sampler: Sampler, seconds: float, phase: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sampler.take(phase)
        time.sleep(0.2)


def _relative(samples: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    return [{**s, "at": round(s["at"] - start, 1)} for s in samples]


def verdicts(result: dict[str, Any], window_s: float, acked: int) -> dict[str, Any]:
    """Flatness after the first window, and what the load left behind."""
    load = [s for s in result["samples"] if s["phase"] == "load" and s["at"] >= window_s]
    used = trend_drift([(s["at"], s["used_memory"]) for s in load])
    servers = sorted({name for s in load for name in s["rss"]})
    rss = {name: trend_drift([(s["at"], s["rss"][name]) for s in load if name in s["rss"]])
           for name in servers}
    p99 = trend_drift([(t, v) for t, v in result["p99"] if t >= window_s and v is not None])
    retained = result["after"]["used_memory"] - result["before"]["used_memory"]
    memory = [x for x in (used, *rss.values()) if x is not None]
    memory_flat = bool(memory) and all(x <= MAX_DRIFT for x in memory)
    p99_flat = p99 is not None and p99 <= MAX_DRIFT
    return {
        "used_memory_drift": used, "rss_drift": rss, "p99_drift": p99,
        "memory_flat": memory_flat, "p99_flat": p99_flat, "flat": memory_flat and p99_flat,
        "retained_bytes": retained,
        "retained_bytes_per_acked_message": round(retained / acked, 3) if acked else None,
        "memory_back": retained <= MAX_RETAINED_BYTES,
    }


def markdown(result: dict[str, Any]) -> str:
    v, c, step = result["verdicts"], result["config"], result["step"]
    primary = next((x for name, x in (step.get("cpu") or {}).get("processes", {}).items()
                    if "(primary)" in name), None)
    mib = 1024 * 1024
    lines = [
        f"Soak: {result['rate']:g} msg/s offered for {c['minutes']:g} min "
        f"(half of the sustainable rate{'' if 'search' in result else ', given'}), "
        f"dedupe window {c['dedupe_window_s']} s, {c['clients']} senders, "
        f"{c['body_bytes']} B bodies; sampled every {c['sample_s']:g} s.", "",
        f"- delivered {step['delivered']:,} of {step['ok']:,} acked sends, errors "
        f"{sum(step['errors'].values())}; send→delivered ms p50/p99 "
        f"{step['send_delivered_ms']['p50']} / {step['send_delivered_ms']['p99']}",
        f"- used_memory before the load {result['before']['used_memory'] / mib:.2f} MiB, "
        f"one window after it {result['after']['used_memory'] / mib:.2f} MiB: retained "
        f"{v['retained_bytes']:,} B, {v['retained_bytes_per_acked_message']} B per acked "
        f"message ({'met' if v['memory_back'] else 'NOT met'}: within 1 MB)",
        f"- trend after the first window (share of the level, at most {MAX_DRIFT:g} is flat): "
        f"used_memory {v['used_memory_drift']}, RSS {v['rss_drift']}: memory "
        f"{'flat' if v['memory_flat'] else 'NOT flat'}; p99 {v['p99_drift']}: "
        f"{'flat' if v['p99_flat'] else 'NOT flat'} (per-interval p99 ms: "
        f"{_spread([y for _, y in result['p99'] if y is not None])})",
    ]
    if primary:
        lines.append(f"- primary CPU: {primary['core_pct']} % of a core, "
                     f"{primary['cpu_s_per_1k']} CPU-s per 1,000 delivered")
    return "\n".join(lines) + "\n"


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"min {min(values):.0f}, median {statistics.median(values):.0f}, "
            f"max {max(values):.0f}")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    t = [s["at"] for s in samples]
    axes[0].plot(t, [s["used_memory"] / 2**20 for s in samples], marker=".", label="used_memory")
    axes[0].axhline(result["before"]["used_memory"] / 2**20, linestyle=":", label="before load")
    axes[0].set_ylabel("primary used_memory (MiB)")
    for name in sorted({n for s in samples for n in s["rss"]}):
        axes[1].plot([s["at"] for s in samples if name in s["rss"]],
                     [s["rss"][name] / 2**20 for s in samples if name in s["rss"]],
                     marker=".", label=name)
    axes[1].set_ylabel("server RSS (MiB)")
    p99 = [(x, y) for x, y in result["p99"] if y is not None]
    axes[2].plot([x for x, _ in p99], [y for _, y in p99], marker=".", label="p99")
    axes[2].set_ylabel("send→delivered p99 per interval (ms)")
    end = result["config"]["minutes"] * 60
    for ax in axes:
        ax.axvline(result["config"]["dedupe_window_s"], color="grey", linestyle="--",
                   label="one window")
        ax.axvline(end, color="black", linestyle="--", label="load ends")
        ax.set_xlabel("seconds since the load started")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: dict[str, Any], out: Path) -> Path:
    return report.write_run(result, out, ("soak.json", "soak.md", "soak.png"), markdown, plot)
