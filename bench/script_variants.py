"""The storage-script versions bench/sendcost.py compares, and how each is called.

A Variant is a set of Lua sources (send, ack, publish) with the KEYS/ARGV
its version took: `243df5b` (before the dedupe window), `680621c` (dedupe
window + quotas), `93f6b9a` (the last make bench: runs of neighbouring sends
only, called like `current`), read from git history, and `current`, the
scripts of this checkout called as server/store.py calls them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server import keys
from server.data.messages import ack_call, publish_args, send_call
from server.store import SCRIPTS
from tests.procs import ROOT

WINDOW_MS = 3600 * 1000
#: Calls of one send / one ack: (KEYS, ARGV).
Call = tuple[list[str], list[Any]]


@dataclass(frozen=True)
class Variant:
    name: str
    scripts: dict[str, str]  # send, ack, publish -> Lua source
    send: Callable[[str, str, str, str, int], Call]  # sender, to, msg_id, body, ts
    ack: Callable[[str, str], Call]  # name, smallest seq to keep
    publish: Callable[[list[tuple[str, bytes]]], list[Any]]  # ARGV of publish.lua


def _git_script(commit: str, name: str) -> str:
    """A script as it was at `commit` (server/scripts/ before the layers, then data/scripts/)."""
    for folder in ("server/scripts", "server/data/scripts"):
        found = subprocess.run(["git", "show", f"{commit}:{folder}/{name}.lua"], cwd=ROOT,
                               capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout
    raise FileNotFoundError(f"{name}.lua at {commit} (a checkout without that history?)")


def _flat_publish(items: list[tuple[str, bytes]]) -> list[Any]:
    return [x for name, payload in items for x in (keys.channel(name), payload)]


def _old(commit: str) -> dict[str, str]:
    return {n: _git_script(commit, n) for n in ("send", "ack", "publish")}


def _before_window() -> Variant:
    return Variant(
        "243df5b", _old("243df5b"),
        lambda s, to, m, b, ts: (
            [keys.account(to), keys.inbox(to), keys.seen(to), keys.seen_expiry(to)],
            [s, to, m, b, ts, 24 * 3600 * 1000, 10_000]),
        lambda name, keep: ([keys.inbox(name)], [keep]), _flat_publish)


def _window_and_quotas() -> Variant:
    return Variant(
        "680621c", _old("680621c"),
        lambda s, to, m, b, ts: (
            [keys.account(to), keys.inbox(to), keys.dedupe(to), keys.dedupe(to),
             keys.seen(to)],
            [s, to, m, b, ts, "hsetex", WINDOW_MS, "0", 10_000, 1000, 16 << 20]),
        lambda name, keep: ([keys.inbox(name), keys.account(name)], [keep]),
        _flat_publish)


def _current(name: str = "current", commit: str | None = None) -> Variant:
    """This checkout's calls; the scripts of `commit` (same KEYS/ARGV) or of the checkout."""
    scripts = _old(commit) if commit else {
        n: (SCRIPTS / f"{n}.lua").read_text() for n in ("send", "ack", "publish")}
    return Variant(
        name, scripts,
        lambda s, to, m, b, ts: send_call(
            sender=s, to=to, msg_id=m, body=b, now_ms=ts,
            dedupe=([keys.dedupe(to)], ["hsetex", WINDOW_MS, "0"]),
            max_inbox=10_000, max_pending=1000, max_bytes=16 << 20),
        lambda name, keep: ack_call(name, keep), publish_args)


def _runs_of_neighbours() -> Variant:
    """The scripts of the last make bench (runs of neighbouring sends only)."""
    return _current("93f6b9a", "93f6b9a")


def variants() -> list[Variant]:
    """Every variant whose scripts this checkout can read; a clone without the
    history of the old commits measures the current scripts alone (and says so)."""
    found = []
    for make in (_before_window, _window_and_quotas, _runs_of_neighbours, _current):
        try:
            found.append(make())
        except FileNotFoundError as exc:
            print(f"sendcost: skipping a baseline: {exc}", file=sys.stderr)
    return found
