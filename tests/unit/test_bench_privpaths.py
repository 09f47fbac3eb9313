"""The arithmetic of `python -m bench.privpaths`: per-round CPU per 1,000 frames,
and each variant's ratio to the private paths as a median with its spread."""

from __future__ import annotations

from typing import Any

from bench.privpaths import METRICS, ratios, round_numbers


def step(a_cpu_s: float, b_cpu_s: float, ok: int, delivered: int) -> dict[str, Any]:
    return {"ok": ok, "delivered": delivered, "ok_per_s": ok / 10,
            "delivered_per_s": delivered / 10,
            "cpu": {"processes": {"a": {"cpu_s": a_cpu_s}, "b": {"cpu_s": b_cpu_s}}}}


def test_a_round_gives_each_servers_cpu_milliseconds_per_thousand_frames() -> None:
    got = round_numbers(step(a_cpu_s=3.0, b_cpu_s=1.5, ok=10_000, delivered=5_000), 2_500)
    assert got == {"a_cpu_ms_per_1k_replies": 300.0, "b_cpu_ms_per_1k_pushes": 300.0,
                   "b_cpu_ms_per_1k_pubsub": 600.0, "replies_per_s": 1000.0,
                   "pushes_per_s": 500.0, "pubsub_messages": 2_500}


def test_ratios_pair_each_round_with_the_private_round_beside_it() -> None:
    def numbers(x: float) -> dict[str, float]:
        return dict.fromkeys(METRICS, x)

    rounds = {"private": [numbers(100), numbers(200), numbers(100)],
              "public-ws": [numbers(110), numbers(260), numbers(120)]}
    got = ratios(rounds)
    assert list(got) == ["public-ws"]  # the base is not compared with itself
    assert got["public-ws"]["a_cpu_ms_per_1k_replies"] == {"median": 1.2, "min": 1.1,
                                                           "max": 1.3}
    assert set(got["public-ws"]) == set(METRICS)
