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
        assert step["ok"] == step["sent"] > 0, step
        assert step["delivered"] == step["ok"], step
        assert step["send_ok_ms"]["p99"] is not None
    assert result["limit"]["sends_per_s"] > 0
    assert result["memory"][0]["kib_per_conn_plain"] > 0
    assert result["failover"]["verify"]["lost"] == 0
    assert result["failover"]["gap_s"] is not None
    assert set(result["ratios"]) == {"us_over_peer", "us_over_limit", "peer_over_limit"}
    assert (out / "latency.png").stat().st_size > 0
    assert "| target |" in (out / "report.md").read_text()
