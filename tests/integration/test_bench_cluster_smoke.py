"""`python -m bench --smoke --cluster` runs the cluster's steps end to end.

The plain smoke run (test_bench_smoke.py) leaves the cluster out: forming
9 nodes and a second failover step would double its time. Here the peer,
the limit and the memory parts are skipped instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ROOT


@pytest.mark.slow
def test_bench_cluster_smoke_measures_every_shard_node_and_loses_no_acked_message(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--cluster", "--no-peer",
                          "--no-limit", "--no-memory", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    steps = [s for s in result["steps"] if s["kind"] == "cluster"]
    assert {s["phase"] for s in steps} >= {"max", "fixed", "search"}
    for step in steps:
        if step["phase"] != "search":  # a search step may overload on purpose
            assert step["ok"] == step["sent"] > 0 and step["delivered"] == step["ok"], step
    top = next(s for s in steps if s["phase"] == "max")
    nodes = [n for n in top["cpu"]["processes"] if n.startswith("valkey shard-")]
    assert len(nodes) == 9 and sum("(primary)" in n for n in nodes) == 3, nodes
    cluster = result["cluster"]
    assert sum(cluster["share"].values()) == pytest.approx(1.0)
    assert result["throughput"]["cluster"]["saturation"] > 0
    assert cluster["model"]["cluster_sends_per_s_min"] > 0, cluster["model"]
    failover = cluster["failover"]
    assert failover["verify"]["lost"] == 0 and failover["verify"]["acked"] > 0
    assert failover["gap_s"] is not None and failover["rejoin_gap_s"] is not None, failover
    report = (out / "report.md").read_text()
    assert "Redis Cluster (3 shards, 9 nodes" in report and "Scaling model" in report
