"""`python -m bench --smoke` runs end to end, so the benchmark never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ROOT


@pytest.mark.slow
def test_bench_smoke_reports_every_part_and_loses_no_acked_message(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    kinds = {(s["kind"], s["mode"]) for s in result["steps"]}
    assert kinds == {("chat", "closed"), ("chat", "open"), ("peer", "closed"), ("peer", "open")}
    for step in result["steps"]:
        if step["phase"] == "search":  # may overload on purpose: judged, not required to pass
            assert step["delivered"] <= step["sent"] and "keeps_up" in step, step
            continue
        assert step["ok"] == step["sent"] > 0, step
        assert step["delivered"] == step["ok"], step
        assert step["send_ok_ms"]["p99"] is not None
    assert result["limit"]["sends_per_s"] > 0
    assert result["memory"][0]["kib_per_conn_plain"] > 0
    assert result["failover"]["verify"]["lost"] == 0
    assert result["failover"]["gap_s"] is not None
    assert result["failover"]["rejoin_gap_s"] is not None, result["failover"]  # it came back
    for definition in ("saturation", "sustainable"):
        assert set(result["ratios"][definition]) == {
            "us_over_peer", "us_over_limit", "peer_over_limit"}
    for kind in ("chat", "peer"):
        assert result["throughput"][kind]["saturation"] > 0
        assert 1 <= result["search"][kind]["steps"] <= 2  # smoke: one or two tiny rounds
    has_half = any(s["phase"] == "half" for s in result["steps"])
    assert has_half == (result["throughput"]["chat"]["sustainable"] is not None)
    top = next(s for s in result["steps"] if s["phase"] == "max" and s["kind"] == "chat")
    used = top["cpu"]["processes"]
    assert used["server bench-a"]["cpu_s"] > 0 and used["load senders"]["cpu_s"] > 0
    assert top["cpu"]["total"]["cpu_s_per_1k"] > 0
    assert (out / "latency.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "| target |" in report and "**sustainable**" in report
