"""server/storage/sentinel_majority.py: the one rule for "which primary?"."""

from __future__ import annotations

import pytest

from server.storage.sentinel_majority import is_majority, majority

A, B = ("10.0.0.1", 6379), ("10.0.0.2", 6379)


def test_two_of_three_sentinels_name_the_primary() -> None:
    assert majority([A, A, B], 3) == A


def test_agreeing_reachable_sentinels_are_not_a_majority_of_all_configured() -> None:
    # The minority side of a partition: 2 of 5 agree, 3 are out of reach.
    assert majority([A, A], 5) is None


def test_an_even_split_names_no_primary() -> None:
    assert majority([A, A, B, B], 4) is None
    assert majority([A, B], 2) is None


def test_a_sentinel_that_names_no_primary_votes_for_nobody() -> None:
    assert majority([A, None, None], 3) is None
    assert majority([A, A, None], 3) == A


def test_no_sentinels_no_primary() -> None:
    assert majority([], 0) is None
    assert majority([], 3) is None


def test_addresses_may_be_host_port_strings() -> None:
    assert majority(["h:1", "h:1", "h:2"], 3) == "h:1"


def test_a_generator_of_views_is_read_once() -> None:
    assert majority((view for view in [B, B, A]), 3) == B


def test_more_answers_than_sentinels_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="3 answers from 2"):
        majority([A, A, A], 2)
    with pytest.raises(ValueError):
        majority([], -1)


@pytest.mark.parametrize(("count", "total", "expected"), [
    (2, 3, True), (1, 3, False), (3, 5, True), (2, 5, False), (2, 4, False), (3, 4, True),
    (1, 1, True), (0, 0, False),
])
def test_is_majority_means_more_than_half(count: int, total: int, expected: bool) -> None:
    assert is_majority(count, total) is expected
