"""Per-process CPU over a load step, from two samples of /proc.

A `Snapshot` holds utime+stime (all threads) of every named group of
processes plus the machine's busy and total jiffies from /proc/stat; two
snapshots give each group's CPU-seconds, its share of one core, and its
CPU-seconds per 1,000 delivered messages (`usage`, pure). A process that
is gone in either sample (a killed primary) is left out of that step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Named groups of pids ("server bench-a": [pid], "sentinels": [p1, p2, p3]).
PidGroups = Mapping[str, list[int]]

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    ticks: dict[str, int]  # group -> utime+stime of its live pids, in clock ticks
    machine_busy: int  # /proc/stat "cpu" line: all jiffies but idle and iowait
    machine_total: int


def process_ticks(stat_line: str) -> int:
    """utime+stime from one /proc/<pid>/stat line. The command name in
    parentheses may hold spaces, so fields are counted after the last ')'."""
    fields = stat_line.rpartition(")")[2].split()
    # After the name: state is field 3 of stat(5), utime 14 and stime 15.
    return int(fields[11]) + int(fields[12])


def machine_ticks(proc_stat: str) -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat's first line."""
    values = [int(x) for x in proc_stat.splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user/nice
    return total - idle, total


def snapshot(groups: PidGroups, proc: Path = Path("/proc")) -> Snapshot:
    ticks: dict[str, int] = {}
    for name, pids in groups.items():
        total, found = 0, False
        for pid in pids:
            try:
                total += process_ticks((proc / str(pid) / "stat").read_text())
                found = True
            except (OSError, ValueError, IndexError):
                continue  # exited between listing and reading
        if found:
            ticks[name] = total
    busy, all_ticks = machine_ticks((proc / "stat").read_text())
    return Snapshot(time.monotonic(), ticks, busy, all_ticks)


def usage(before: Snapshot, after: Snapshot, delivered: int, *,
          cores: int | None = None, clk_tck: int = CLK_TCK) -> dict[str, Any]:
    """CPU of each group between two snapshots, and the sum of them.

    `core_pct` is the share of one core (100 = one core busy all the time);
    `cpu_s_per_1k` is CPU-seconds per 1,000 messages delivered in between.
    `machine_busy_pct` is how busy all cores were, whoever used them."""
    wall = max(1e-6, after.at - before.at)
    per_k = 1000 / delivered if delivered > 0 else None

    def entry(ticks: int) -> dict[str, Any]:
        cpu_s = ticks / clk_tck
        return {"cpu_s": round(cpu_s, 3), "core_pct": round(100 * cpu_s / wall, 1),
                "cpu_s_per_1k": None if per_k is None else round(cpu_s * per_k, 4)}

    procs = {name: entry(after.ticks[name] - before.ticks[name])
             for name in before.ticks if name in after.ticks}
    total_ticks = sum(after.ticks[n] - before.ticks[n] for n in procs)
    machine_total = after.machine_total - before.machine_total
    machine_busy = after.machine_busy - before.machine_busy
    return {"wall_s": round(wall, 3), "delivered": delivered,
            "cores": cores or os.cpu_count() or 1, "processes": procs,
            "total": entry(total_ticks),
            "machine_busy_pct": (round(100 * machine_busy / machine_total, 1)
                                 if machine_total > 0 else None)}


def wait_quiet(groups: Callable[[], PidGroups], *, below_core_pct: float = 30.0,
               window_s: float = 0.3, max_s: float = 5.0) -> float:
    """Wait until the named processes together use less than `below_core_pct`
    of one core over `window_s` (a previous overloaded step may leave queues
    behind), at most `max_s`; the seconds waited."""
    started = time.monotonic()
    while True:
        pids = groups()
        before = snapshot(pids)
        time.sleep(window_s)
        total = usage(before, snapshot(pids), 0)["total"]["core_pct"]
        waited = time.monotonic() - started
        if total < below_core_pct or waited >= max_s:
            return round(waited, 2)
