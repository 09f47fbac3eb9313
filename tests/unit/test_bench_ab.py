"""bench/ab.py's inputs: which checkouts run, and the flags each one's server takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ab import accepted_flags, parse_sides
from bench.cluster import SERVER_FLAGS
from tests.procs import ROOT


def test_each_side_is_a_label_and_a_checkout(tmp_path: Path) -> None:
    assert parse_sides([f"old={tmp_path}", "new=."]) == {"old": tmp_path,
                                                         "new": Path(".").resolve()}


def test_a_side_without_a_label_is_refused() -> None:
    with pytest.raises(ValueError, match="LABEL=CHECKOUT"):
        parse_sides(["/tmp/old"])


def test_this_checkouts_server_takes_every_bench_flag() -> None:
    assert accepted_flags(ROOT) == SERVER_FLAGS


def test_flags_an_older_server_does_not_know_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "__main__.py").write_text(
        'print("--requests-per-second N --request-burst N --max-connections-per-ip N")\n')
    flags = accepted_flags(tmp_path)
    assert "--max-hash-per-address" not in flags
    assert flags[:2] == ["--requests-per-second", "10000000"]
