"""`python -m bench.ab_failover`: the failover step of two checkouts, taking turns.

One trial = a fresh local HA set, two servers of one checkout, open-loop
sends at `--rate` (50 senders on A to 50 receivers on B), the primary
SIGKILLed after 2 s and restarted from its own config once the new one
serves (bench/failover.py). Per trial: the longest span without an ok after
the kill (the failover gap) and after the rejoin (the rejoin gap), acked
sends lost, and how often a server's topology poll overran. Sides alternate
trial by trial, so both see the same neighbours' load.

    git worktree add --detach /tmp/old a2c4eb1
    python -m bench.ab_failover --rate 800 --rounds 3 old=/tmp/old new=.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import failover
from bench.ab import parse_sides, parser, start_side
from bench.cluster import Cluster

#: The primary is killed this long into the step; the step lasts KILL_AFTER_S + TAIL_S.
KILL_AFTER_S = 2.0
TAIL_S = 24.0
#: Server log lines that tell how its topology polls went during the trial.
POLL_LINES = {"polls_overran": "topology poll took over",
              "views_kept": "keeping the view of"}


def trial(label: str, checkout: Path, *, rate: float, uvloop: bool) -> dict[str, Any]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="chat-abfo-")), uvloop=uvloop)
    try:
        cluster.start()
        plan = start_side(cluster, label, checkout, rate=rate,
                          duration_s=KILL_AFTER_S + TAIL_S, receiver_acks=False,
                          keep_acked=True)
        out = failover.run(failover.SentinelVictim(cluster.local), plan,
                           kill_after_s=KILL_AFTER_S)
        acked = out.pop("acked")
        out["verify"] = asyncio.run(failover.verify(plan.receiver_url, plan, acked))
        logs = "".join(server.log() for server in cluster.servers.values())
        out.update({name: logs.count(line) for name, line in POLL_LINES.items()})
        return out
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    a = parser("python -m bench.ab_failover", __doc__,
               "bench/out/ab_failover.json").parse_args(argv)
    trials = []
    for r in range(a.rounds):
        for label, checkout in parse_sides(a.sides).items():
            out = trial(label, checkout, rate=a.rate, uvloop=not a.asyncio)
            out.update(label=label, round=r)
            trials.append(out)
            print(json.dumps({key: out.get(key) for key in (
                "label", "round", "gap_s", "rejoin_gap_s", "polls_overran", "views_kept")}
                | {"lost": out["verify"]["lost"], "errors": out["step"].get("errors")}),
                flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(trials, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
