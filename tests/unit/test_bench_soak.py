"""The soak's verdicts: trend drift, p99 per interval, memory back after the window."""

from __future__ import annotations

from typing import Any

from bench.judge import primary_cpu_per_1k
from bench.soak import interval_p99, trend_drift, verdicts


def test_a_flat_noisy_series_has_no_drift_and_a_growing_one_has_its_growth() -> None:
    flat = [(t, 100.0 + (3 if t % 20 else -3)) for t in range(0, 200, 10)]
    assert (trend_drift(flat) or 0) < 0.05
    growing = [(t, 100.0 + t / 10) for t in range(0, 200, 10)]  # +19 over a mean of ~109.5
    assert 0.15 < (trend_drift(growing) or 0) < 0.2


def test_one_spike_from_a_busy_neighbour_does_not_make_a_trend() -> None:
    series = [(float(t), 100.0) for t in range(0, 200, 10)]
    series[15] = (150.0, 1800.0)
    assert trend_drift(series) == 0


def test_drift_needs_three_points() -> None:
    assert trend_drift([(0, 1.0), (10, 2.0)]) is None


def test_p99_is_taken_per_interval_by_arrival_time() -> None:
    arrivals = [100.5, 101.0, 112.0, 125.0]
    latency = [5.0, 7.0, 9.0, 11.0]
    assert interval_p99(arrivals, latency, start=100.0, step=10.0) == [
        (10.0, 7.0), (20.0, 9.0), (30.0, 11.0)]


def sample(at: float, used: int, rss: int, phase: str = "load") -> dict[str, Any]:
    return {"at": at, "phase": phase, "used_memory": used, "rss": {"soak-a": rss}}


def test_memory_within_a_megabyte_of_before_is_back_and_a_flat_run_is_flat() -> None:
    result = {"samples": [sample(t, 5_000_000, 80_000_000) for t in range(0, 180, 10)],
              "p99": [(float(t), 20.0) for t in range(10, 190, 10)],
              "before": {"used_memory": 2_000_000}, "after": {"used_memory": 2_500_000}}
    v = verdicts(result, 30, acked=100_000)
    assert v["flat"] and v["memory_back"]
    assert v["retained_bytes_per_acked_message"] == 5.0


def test_memory_that_keeps_growing_is_neither_flat_nor_back() -> None:
    result = {"samples": [sample(t, 5_000_000 + 50_000 * t, 80_000_000)
                          for t in range(0, 180, 10)],
              "p99": [(float(t), 20.0) for t in range(10, 190, 10)],
              "before": {"used_memory": 2_000_000}, "after": {"used_memory": 9_000_000}}
    v = verdicts(result, 30, acked=100_000)
    assert not v["flat"] and not v["memory_back"]


def test_primary_cpu_is_read_from_the_step_of_the_primary_node() -> None:
    step = {"cpu": {"processes": {"valkey node-1 (replica)": {"cpu_s_per_1k": 0.02},
                                  "valkey node-0 (primary)": {"cpu_s_per_1k": 0.03}}}}
    assert primary_cpu_per_1k(step) == 0.03
    assert primary_cpu_per_1k(None) is None
