"""Reconnect policy: jittered exponential backoff and URL rotation."""

from __future__ import annotations

import pytest

from client.backoff import Backoff, UrlRotation


def test_backoff_ceiling_doubles_from_base_up_to_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert [backoff.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_delay_is_full_jitter_below_the_ceiling() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx([0.05, 0.1, 0.2])


def test_backoff_reset_starts_from_base_again() -> None:
    backoff = Backoff(base=0.1, cap=5.0, rng=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert Backoff(base=0.1, cap=3.0).ceiling(10_000) == 3.0


def test_backoff_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)


def test_rotation_is_round_robin() -> None:
    rotation = UrlRotation(["a", "b", "c"])
    assert [rotation.pick()[0] for _ in range(4)] == ["a", "b", "c", "a"]


def test_rotation_skips_an_instance_that_is_shutting_down() -> None:
    now = [100.0]
    rotation = UrlRotation(["a", "b"], clock=lambda: now[0])
    rotation.avoid("a", 5.0)
    assert [rotation.pick() for _ in range(2)] == [("b", 0.0), ("b", 0.0)]
    now[0] += 6.0
    assert rotation.pick() == ("a", 0.0)


def test_rotation_waits_for_the_soonest_when_every_instance_is_avoided() -> None:
    rotation = UrlRotation(["a", "b"], clock=lambda: 10.0)
    rotation.avoid("a", 3.0)
    rotation.avoid("b", 1.0)
    url, wait = rotation.pick()
    assert url == "b"
    assert wait == pytest.approx(1.0)


def test_rotation_needs_a_url() -> None:
    with pytest.raises(ValueError):
        UrlRotation([])
