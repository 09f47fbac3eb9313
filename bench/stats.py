"""Latency summaries: percentiles by nearest rank over raw samples (ms)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(sorted_ms: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list; NaN when empty."""
    if not sorted_ms:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
    """{"n", "p50", "p95", "p99", "max"} in ms, rounded for reports."""
    ordered = sorted(samples_ms)
    out: dict[str, Any] = {"n": len(ordered)}
    for pct in PERCENTILES:
        out[f"p{pct}"] = _round(percentile(ordered, pct))
    out["max"] = _round(ordered[-1] if ordered else math.nan)
    return out


def _round(value: float) -> float | None:
    # JSON has no NaN: an empty sample set is reported as null.
    return None if math.isnan(value) else round(value, 2)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if not ours or not theirs:
        return None
    return round(ours / theirs, 3)
