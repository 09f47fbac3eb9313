"""server/conn/admission.py: per-address connection counts and the descriptor-limit check."""

from __future__ import annotations

import logging
import resource

import pytest

from server.conn import admission
from server.settings import Settings


def test_an_address_at_its_limit_is_refused_while_others_are_admitted() -> None:
    counts = admission.AddressCounts(limit=2)
    assert counts.admit("10.0.0.1") and counts.admit("10.0.0.1")
    assert not counts.admit("10.0.0.1")
    assert counts.admit("10.0.0.2")
    counts.release("10.0.0.1")
    assert counts.admit("10.0.0.1")


def test_released_addresses_leave_no_entry_behind() -> None:
    counts = admission.AddressCounts(limit=5)
    counts.admit("a")
    counts.release("a")
    assert not counts.counts


def test_low_descriptor_limit_that_cannot_be_raised_logs_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    with caplog.at_level(logging.WARNING, logger="server.conn.admission"):
        admission.check_descriptor_limit(Settings(redis_url="redis://x/0"))
    assert "descriptor limit 1024 is below" in caplog.text


def test_soft_limit_is_raised_to_the_hard_one_when_short(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 65536))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: calls.append(limits))
    with caplog.at_level(logging.WARNING, logger="server.conn.admission"):
        admission.check_descriptor_limit(Settings(redis_url="redis://x/0"))
    assert calls == [(65536, 65536)]
    assert "below" not in caplog.text
