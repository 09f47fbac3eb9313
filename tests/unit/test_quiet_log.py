"""A storm of `unavailable` answers (every client retrying through an outage)
is logged once a second with how many lines were held back, not line by line."""

from __future__ import annotations

from server.conn.requests import QuietLog


def test_one_line_a_second_goes_through_and_says_how_many_were_held_back() -> None:
    quiet = QuietLog(1.0)
    assert quiet.allow(10.0) == 0
    assert [quiet.allow(10.0 + i / 100) for i in range(1, 99)] == [None] * 98
    assert quiet.allow(11.0) == 98
    assert quiet.allow(11.5) is None


def test_a_line_after_a_quiet_second_goes_through_at_once() -> None:
    quiet = QuietLog(1.0)
    assert quiet.allow(5.0) == 0
    assert quiet.allow(7.0) == 0
