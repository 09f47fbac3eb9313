"""`python -m bench`: the whole benchmark; `--smoke` is a tiny run for CI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import soak
from bench.search import Budget, Rule
from bench.suite import Config, run


def parse(argv: list[str]) -> Config | soak.SoakConfig:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny counts, ~20 s: proves it runs")
    p.add_argument("--out", type=Path, default=Path("bench/out"), help="results folder")
    p.add_argument("--clients", type=int, help="senders (= receivers) per side [50]")
    p.add_argument("--body-bytes", type=int, default=256, help="message body size")
    p.add_argument("--step-seconds", type=float, help="length of each load step [8]")
    p.add_argument("--max-count", type=int, help="most messages per step [100000]")
    p.add_argument("--fractions", default="0.1,0.25,0.5,0.75,0.9,1.1",
                   help="open-loop steps as fractions of our closed-loop max")
    p.add_argument("--memory-conns", help="idle connection counts [1000,5000]")
    p.add_argument("--profile", type=float, default=0.0,
                   help="seconds of py-spy on instance A during the max step (0: off)")
    p.add_argument("--asyncio", action="store_true",
                   help="standard asyncio loop in servers, peer and load (default: uvloop, "
                   "as the server picks when it is installed)")
    p.add_argument("--slo-ms", type=float, default=250.0,
                   help="sustainable rate: send→delivered p99 bound of a step that keeps up")
    p.add_argument("--search-seconds", type=float,
                   help="wall-time budget of each side's sustainable-rate search [90]")
    p.add_argument("--search-step-seconds", type=float,
                   help="length of each search step [4]")
    p.add_argument("--search-steps", type=int, help="most search steps per side [12]")
    p.add_argument("--cluster", action="store_true",
                   help="then the same steps of ours and the failover against a local Redis "
                   "Cluster (3 shards x 3 nodes), CPU per shard node (make bench sets it)")
    for part in ("peer", "limit", "memory", "failover"):
        p.add_argument(f"--no-{part}", action="store_true", help=f"skip the {part} measurement")
    p.add_argument("--soak", type=float, metavar="MINUTES",
                   help="instead of the suite: a soak of MINUTES at half the sustainable rate, "
                   "sampling memory and p99 (bench/soak.py)")
    p.add_argument("--rate", type=float, help="soak: offered msg/s (default: half the "
                   "sustainable rate, searched first)")
    p.add_argument("--soak-window-s", type=int, default=60,
                   help="soak: the servers' --dedupe-window-s [60]")
    a = p.parse_args(argv)
    smoke = a.smoke
    rule = Rule(slo_ms=a.slo_ms)
    if a.soak is not None:
        if a.soak <= 0 or (a.rate is not None and a.rate <= 0):
            p.error("--soak and --rate must be positive")
        return soak.SoakConfig(
            out=a.out, minutes=a.soak, window_s=a.soak_window_s, rate=a.rate,
            clients=a.clients or 50, body_bytes=a.body_bytes, uvloop=not a.asyncio, rule=rule,
            budget=Budget(step_s=a.search_step_seconds or 4.0,
                          total_s=a.search_seconds or 60.0, max_steps=a.search_steps or 8))
    return Config(
        out=a.out, smoke=smoke, clients=a.clients or (4 if smoke else 50),
        body_bytes=a.body_bytes, step_s=a.step_seconds or (1.5 if smoke else 8.0),
        max_count=a.max_count or (300 if smoke else 100_000),
        fractions=[0.5] if smoke else [float(x) for x in a.fractions.split(",")],
        memory_conns=[int(x) for x in (a.memory_conns or ("50" if smoke else "1000,5000"))
                      .split(",")],
        profile_s=a.profile, uvloop=not a.asyncio,
        peer=not a.no_peer, limit=not a.no_limit, memory=not a.no_memory,
        failover=not a.no_failover, cluster=a.cluster,
        rule=rule,
        budget=Budget(step_s=a.search_step_seconds or (1.0 if smoke else 4.0),
                      total_s=a.search_seconds or (20.0 if smoke else 90.0),
                      max_steps=a.search_steps or (2 if smoke else 12)),
    )


def main(argv: list[str] | None = None) -> int:
    config = parse(sys.argv[1:] if argv is None else argv)
    if isinstance(config, soak.SoakConfig):
        report = soak.run(config)
        print(report.read_text())
        print(f"results: {config.out}/soak.json, {config.out}/soak.md, {config.out}/soak.png",
              file=sys.stderr)
        return 0
    report = run(config)
    print(report.read_text())
    print(f"results: {config.out}/results.json, {config.out}/report.md, "
          f"{config.out}/latency.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
