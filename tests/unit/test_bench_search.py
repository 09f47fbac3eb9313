"""The sustainable-rate search of the benchmark: the keeps-up rule and the
bracketing decisions (bench/search.py), without running any load."""

from __future__ import annotations

from typing import Any

import pytest

from bench import search
from bench.search import Budget, Rule, bracket, keeps_up, next_rate

RULE = Rule(slo_ms=250, min_share=0.98, drain_s=1.0)


def step(rate: float = 1000, *, offered: int = 4000, in_time: int = 4000, p99: float | None = 40,
         errors: dict[str, int] | None = None, mode: str = "open") -> dict[str, Any]:
    return {"mode": mode, "offered_rate": rate, "offered_count": offered,
            "delivered_in_time": in_time, "errors": errors or {},
            "send_delivered_ms": {"p99": p99}}


def test_a_step_delivering_everything_fast_without_errors_keeps_up() -> None:
    assert keeps_up(step(), RULE) == (True, "keeps up")


def test_exactly_98_percent_in_time_and_p99_at_the_slo_still_keeps_up() -> None:
    assert keeps_up(step(in_time=3920, p99=250), RULE)[0]


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"in_time": 3918}, "97.95 % delivered in time"),
    ({"p99": 250.5}, "p99 250.5 ms > 250 ms"),
    ({"p99": None}, "nothing delivered"),
    ({"errors": {"no reply in time": 1}}, "1 errors"),
    ({"mode": "closed"}, "not an open-loop step"),
    ({"offered": 0}, "not an open-loop step"),
])
def test_a_step_that_falls_behind_errs_or_is_slow_does_not_keep_up(
        kwargs: dict[str, Any], why: str) -> None:
    assert keeps_up(step(**kwargs), RULE) == (False, why)


def test_the_slo_is_a_parameter_of_the_rule() -> None:
    assert not keeps_up(step(p99=120), Rule(slo_ms=100))[0]
    assert keeps_up(step(p99=120), Rule(slo_ms=150))[0]


def test_bracket_ignores_a_failure_below_the_best_pass() -> None:
    seen = [(1000.0, True), (1200.0, False), (1500.0, True), (2500.0, False), (3000.0, False)]
    assert bracket(seen) == (1500.0, 2500.0)
    assert bracket([]) == (None, None)
    assert bracket([(800.0, False)]) == (None, 800.0)


def test_next_rate_starts_at_the_start_then_grows_from_the_best_pass() -> None:
    assert next_rate([], 3400, 0.05) == 3400
    assert next_rate([(3400.0, True)], 3400, 0.05) == 5100


def test_next_rate_halves_while_nothing_passed_and_gives_up_below_one_per_second() -> None:
    assert next_rate([(3400.0, False)], 3400, 0.05) == 1700
    assert next_rate([(1.5, False)], 3400, 0.05) is None


def test_next_rate_bisects_then_stops_within_tolerance() -> None:
    assert next_rate([(1697.0, True), (2545.0, False)], 692, 0.05) == 2121
    assert next_rate([(2000.0, True), (2090.0, False)], 692, 0.05) is None


def test_next_rate_never_repeats_a_rate_already_measured() -> None:
    assert next_rate([(10.0, True), (11.0, False)], 10, 0.01) is None


def threshold_side(limit: float) -> tuple[list[float], Any]:
    """A fake side that keeps up exactly up to `limit` msg/s."""
    asked: list[float] = []

    def step_at(rate: float) -> dict[str, Any]:
        asked.append(rate)
        return step(rate, p99=40 if rate <= limit else 5000)

    return asked, step_at


def test_search_from_the_fixed_steps_converges_below_the_true_limit() -> None:
    asked, step_at = threshold_side(2000)
    seeds = [step(848), step(1697), step(2545, p99=9000), step(mode="closed")]
    out = search.run(step_at, seeds, 692, RULE, Budget(tolerance=0.05))
    found = search.sustainable(out.seen)
    assert asked[0] == 2121  # midway between the last good and the first bad fixed step
    assert found["rate"] is not None and found["first_failing_above"] is not None
    assert 0.95 * 2000 <= found["rate"] <= 2000 < found["first_failing_above"]
    assert found["first_failing_above"] - found["rate"] <= 0.05 * found["rate"]
    assert out.stopped == "bracket within tolerance"
    assert len(out.steps) == len(asked) <= 6


def test_search_without_seeds_grows_from_the_start_until_a_step_fails() -> None:
    asked, step_at = threshold_side(5000)
    out = search.run(step_at, [], 1000, RULE, Budget())
    assert asked[:4] == [1000, 1500, 2250, 3375]
    assert 0.95 * 5000 <= (search.sustainable(out.seen)["rate"] or 0) <= 5000


def test_search_stops_at_its_step_cap_and_at_its_time_budget() -> None:
    asked, step_at = threshold_side(2000)
    out = search.run(step_at, [], 100, RULE, Budget(max_steps=2))
    assert (len(asked), out.stopped) == (2, "step cap (2)")
    asked, step_at = threshold_side(2000)
    out = search.run(step_at, [], 100, RULE, Budget(step_s=4, total_s=5))
    assert (asked, out.stopped) == ([], "time budget (5 s)")


def test_search_reports_when_no_rate_passed() -> None:
    _, step_at = threshold_side(0)
    out = search.run(step_at, [], 8, RULE, Budget())
    assert out.stopped == "no rate passed"
    assert search.sustainable(out.seen) == {"rate": None, "first_failing_above": 1.0}
