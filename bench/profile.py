"""py-spy on a server under load: collapsed stacks, and the top functions.

Optional (`--profile SECONDS`); py-spy needs ptrace rights on the server
process (root, or kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

START_AFTER_S = 1.0
TOP = 25


class Spy:
    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.pid, self.seconds, self.out = pid, seconds, out
        self.proc: subprocess.Popen[bytes] | None = None

    def tick(self, elapsed: float, oks: int = 0) -> None:
        if self.seconds <= 0 or self.proc is not None or elapsed < START_AFTER_S:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "record", "-p", str(self.pid), "-d", str(int(self.seconds)), "-r", "200",
             "-f", "raw", "-o", str(self.out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        self.proc.wait(self.seconds + 30)
        return summarize(self.out) if self.out.exists() else None


def summarize(path: Path) -> dict[str, Any]:
    """Self and inclusive share of samples per function (file:function)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def top(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(TOP)]

    return {"samples": total, "self_pct": top(own), "inclusive_pct": top(inclusive)}


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{file}:{name}"
