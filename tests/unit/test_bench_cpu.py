"""CPU accounting of the benchmark from two /proc samples (bench/cpu.py)."""

from __future__ import annotations

import os
from pathlib import Path

from bench.cpu import Snapshot, machine_ticks, process_ticks, snapshot, usage


def stat_line(pid: int, comm: str, utime: int, stime: int) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return f"{pid} ({comm}) S 1 1 1 0 -1 4194304 10 0 0 0 {utime} {stime} 0 0 20 0 1 0 5\n"


def test_process_ticks_adds_user_and_system_time_whatever_the_command_name() -> None:
    assert process_ticks(stat_line(7, "valkey-server", 120, 30)) == 150
    assert process_ticks(stat_line(8, "python -m (bench) x", 5, 6)) == 11


def test_machine_ticks_count_everything_but_idle_and_iowait_as_busy() -> None:
    busy, total = machine_ticks("cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4\n")
    assert (busy, total) == (160, 1000)


def test_usage_gives_core_share_and_cpu_seconds_per_thousand_delivered() -> None:
    before = Snapshot(at=10.0, ticks={"server a": 100, "valkey": 50, "gone": 10},
                      machine_busy=1000, machine_total=4000)
    after = Snapshot(at=14.0, ticks={"server a": 300, "valkey": 90, "new": 5},
                     machine_busy=1600, machine_total=4800)
    out = usage(before, after, delivered=8000, cores=2, clk_tck=100)
    assert out["wall_s"] == 4.0
    assert out["processes"] == {
        "server a": {"cpu_s": 2.0, "core_pct": 50.0, "cpu_s_per_1k": 0.25},
        "valkey": {"cpu_s": 0.4, "core_pct": 10.0, "cpu_s_per_1k": 0.05},
    }  # a process missing from either sample is left out
    assert out["total"] == {"cpu_s": 2.4, "core_pct": 60.0, "cpu_s_per_1k": 0.3}
    assert out["machine_busy_pct"] == 75.0
    assert out["cores"] == 2


def test_usage_without_deliveries_has_no_per_message_cost() -> None:
    same = Snapshot(at=1.0, ticks={"x": 5}, machine_busy=0, machine_total=0)
    out = usage(same, same, delivered=0, clk_tck=100)
    assert out["total"]["cpu_s_per_1k"] is None
    assert out["machine_busy_pct"] is None


def test_snapshot_sums_a_group_and_skips_pids_that_are_gone(tmp_path: Path) -> None:
    for pid, utime in ((11, 7), (12, 3)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, "redis", utime, 1))
    (tmp_path / "stat").write_text("cpu  1 0 1 8 0 0 0 0 0 0\n")
    snap = snapshot({"sentinels": [11, 12, 99], "dead": [98]}, proc=tmp_path)
    assert snap.ticks == {"sentinels": 12}
    assert (snap.machine_busy, snap.machine_total) == (2, 10)


def test_snapshot_of_this_process_reads_the_real_proc() -> None:
    snap = snapshot({"me": [os.getpid()]})
    assert snap.ticks["me"] > 0 and snap.machine_total > 0
