"""The cluster's scaling model from CPU per shard node (bench/scaling.py) and
its part of the report (bench/report.py)."""

from __future__ import annotations

from typing import Any

from bench import report, scaling
from bench.judge import judge
from tests.unit.test_bench_judge import RULE, run_result, step


def used(cpu_s: float) -> dict[str, Any]:
    return {"cpu_s": cpu_s, "core_pct": 100 * cpu_s / 4, "cpu_s_per_1k": cpu_s}


def cluster_step() -> dict[str, Any]:
    """4 s, 8,000 sends delivered: shard 0 got half of them, shards 1 and 2 a quarter each."""
    out = step("cluster", None, 2000, 100, phase="max")
    out["cpu"]["delivered"] = 8000
    out["cpu"]["processes"] = {
        "valkey shard-0 node-0 (primary)": used(0.8),  # 4,000 sends: 0.2 ms each
        "valkey shard-0 node-1 (replica)": used(0.2),
        "valkey shard-1 node-3 (primary)": used(0.2),  # 2,000 sends: 0.1 ms each
        "valkey shard-2 node-6 (primary)": used(0.2),
        "server cluster-a": used(3.0),
    }
    return out


SHARE = {"0": 0.5, "1": 0.25, "2": 0.25}


def test_a_shard_primary_takes_one_over_its_cpu_seconds_per_send_to_its_shard() -> None:
    found = scaling.per_shard(cluster_step(), SHARE)
    assert found["0"]["primary_cpu_ms_per_send"] == 0.2
    assert found["0"]["sends_per_s_per_primary_core"] == 5000
    assert found["1"]["sends_per_s_per_primary_core"] == 10000
    # Replicas are reported per 1,000 sends to their shard, beside the primary.
    assert found["0"]["nodes"] == {"node-0 (primary)": 0.2, "node-1 (replica)": 0.05}


def test_the_model_multiplies_the_busiest_and_the_mean_shard_by_the_shard_count() -> None:
    model = scaling.model(cluster_step(), SHARE, 3, sentinel_primary_cpu_s_per_1k=0.125)
    assert model is not None
    assert model["cluster_sends_per_s_min"] == 15000
    assert model["cluster_sends_per_s_mean"] == 24999  # round(8,333.3) x 3
    assert model["sentinel_primary_sends_per_s"] == 8000


def test_a_shard_that_received_no_sends_is_left_out_of_the_model() -> None:
    model = scaling.model(cluster_step(), {"0": 1.0}, 3, None)
    assert model is not None and set(model["per_shard"]) == {"0"}


def test_the_report_shows_the_cluster_steps_cpu_per_shard_node_and_the_model() -> None:
    result = run_result()
    result["steps"] += [cluster_step(), step("cluster", 1000, 1000, 40, phase="half")]
    result["cluster"] = {"shards": 3, "nodes": 9, "node_timeout_ms": 2000, "share": SHARE,
                         "search": {"steps": 1, "stopped": "budget"},
                         "failover": {"killed": "127.0.0.1:7000", "gap_s": 3.1,
                                      "down_after_ms": 2000, "verify": {"lost": 0}}}
    judge(result, RULE)
    assert result["throughput"]["cluster"]["saturation"] == 2000
    text = report.markdown(result)
    assert "Redis Cluster (3 shards, 9 nodes" in text
    assert "| valkey shard-0 node-1 (replica) |" in text
    assert "x 3 shards = 15,000 to 24,999 sends/s" in text
    verdict = next(v for k, v in result["targets"].items() if k.startswith("cluster: failover"))
    assert verdict["met"] is True
