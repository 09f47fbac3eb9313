"""The run's results as JSON, a markdown report and a latency-vs-load plot."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from tests.procs import find_server_binary


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    binary = find_server_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "redis": version.strip(), "kernel": platform.release()}


def _ms(summary: dict[str, Any]) -> str:
    return " / ".join("-" if summary[k] is None else f"{summary[k]:g}"
                      for k in ("p50", "p95", "p99", "max"))


def _target(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def markdown(result: dict[str, Any]) -> str:
    m, r, t = result["machine"], result["ratios"], result["targets"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (shared with other work), Python "
        f"{m['python']}, {m['redis']}. Clients per side: {result['config']['clients']}, "
        f"body {result['config']['body_bytes']} B, event loop {result['config']['loop']}.",
        "",
        "| step | offered msg/s | ok/s | delivered msg/s | send→ok ms p50/p95/p99/max "
        "| send→delivered ms p50/p95/p99/max | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        offered = "max (closed loop)" if step["mode"] == "closed" else f"{step['offered_rate']:g}"
        errors = sum(step["errors"].values())
        lines.append(
            f"| {step['kind']} | {offered} | {step['ok_per_s']:g} | {step['delivered_per_s']:g} "
            f"| {_ms(step['send_ok_ms'])} | {_ms(step['send_delivered_ms'])} | {errors} |")
    limit = result.get("limit") or {}
    lines += ["", f"Limit (raw pipelined EVALSHA+PUBLISH, INCR+WAIT): "
              f"{limit.get('sends_per_s', '-')} sends/s.", "",
              "| ratio | value |", "|---|---|",
              f"| ours / peer (delivered msg/s, durable vs at-most-once) | {r['us_over_peer']} |",
              f"| ours / limit | {r['us_over_limit']} |",
              f"| peer / limit | {r['peer_over_limit']} |", ""]
    fo = result.get("failover") or {}
    if fo:
        v = fo.get("verify", {})
        lines += [f"Failover: killed primary {fo.get('killed')}; longest gap between oks "
                  f"{fo.get('gap_s')} s, starting {fo.get('gap_starts_after_kill_s')} s "
                  f"after the kill (down-after-milliseconds {fo.get('down_after_ms')}); "
                  f"acked {v.get('acked')}, found by fetch {v.get('stored')}, lost "
                  f"{v.get('lost')}.", ""]
    if result.get("memory"):
        lines += ["| idle connections | KiB/conn (plain) | KiB/conn (session) |", "|---|---|---|"]
        lines += [f"| {x['connections']} | {x['kib_per_conn_plain']} | "
                  f"{x['kib_per_conn_session']} |" for x in result["memory"]]
        lines.append("")
    lines += ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {value['measured']} | {_target(value['met'])} |"
              for name, value in t.items()]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or servers
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, title in ((axes[0], "send_ok_ms", "send → ok"),
                              (axes[1], "send_delivered_ms", "send → delivered")):
        for kind, style in (("chat", "-"), ("peer", "--")):
            steps = [s for s in result["steps"] if s["kind"] == kind and s["mode"] == "open"]
            steps.sort(key=lambda s: s["offered_rate"])
            if not steps:
                continue
            rates = [s["offered_rate"] for s in steps]
            for pct in ("p50", "p95", "p99"):
                values = [s[metric][pct] for s in steps]
                ax.plot(rates, values, style, marker="o", label=f"{kind} {pct}")
        ax.set_title(title)
        ax.set_xlabel("offered load (msg/s)")
        ax.set_ylabel("latency (ms)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    report = out / "report.md"
    report.write_text(markdown(result))
    plot(result, out / "latency.png")
    return report
