"""`python -m bench.privpaths`: what the two private fast paths save, both
variants measured in ONE run on this machine.

server/conn/ws_adapter.py writes a frame with websockets internals instead
of the public `await ws.send()`; server/storage/pubsub_reader.py reads every
pub/sub reply hiredis holds instead of one `PubSub.get_message()` at a time.
Each module's public variant is switched on only by an environment
variable it reads itself (CHAT_BENCH_PUBLIC_WS_WRITE,
CHAT_BENCH_PUBLIC_PUBSUB_READ). Three pairs of servers run side by side on
one Sentinel set: `private` (as shipped), `public-ws` and `public-pubsub`.
Senders on A (replies), receivers on B (pub/sub read, pushes); closed loop.
The variants take turns, round after round (private, public-ws,
public-pubsub, private, ...), so a neighbour's load falls on all of them
alike; each round's public/private ratio is one pair, and the report gives
the median ratio and its spread (min, max) over the pairs.

Prefer the CPU ratios: utime+stime of each server process from /proc per
1,000 frames (A: replies; B: pushes, and per 1,000 pub/sub messages the
primary published), which a busy neighbour moves far less than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis

from bench import report
from bench.cluster import Cluster, make_users
from bench.cpu import PidGroups
from bench.loadgen import Plan
from bench.runner import run_step
from tests.procs import ServerProc

#: Each variant's environment; `private` is the server as shipped.
VARIANTS: dict[str, dict[str, str]] = {
    "private": {},
    "public-ws": {"CHAT_BENCH_PUBLIC_WS_WRITE": "1"},
    "public-pubsub": {"CHAT_BENCH_PUBLIC_PUBSUB_READ": "1"},
}
#: The round's numbers compared between variants.
METRICS = ("a_cpu_ms_per_1k_replies", "b_cpu_ms_per_1k_pushes", "b_cpu_ms_per_1k_pubsub",
           "replies_per_s", "pushes_per_s")


def round_numbers(step: Mapping[str, Any], publishes: int) -> dict[str, float]:
    """One step's rates and each server's CPU-milliseconds per 1,000 frames."""
    procs = step["cpu"]["processes"]
    ok, delivered = max(1, step["ok"]), max(1, step["delivered"])
    b_ms = 1000 * procs["b"]["cpu_s"]
    return {"a_cpu_ms_per_1k_replies": round(1000 * procs["a"]["cpu_s"] * 1000 / ok, 2),
            "b_cpu_ms_per_1k_pushes": round(b_ms * 1000 / delivered, 2),
            "b_cpu_ms_per_1k_pubsub": round(b_ms * 1000 / max(1, publishes), 2),
            "replies_per_s": step["ok_per_s"], "pushes_per_s": step["delivered_per_s"],
            "pubsub_messages": publishes}


def ratios(rounds: Mapping[str, Sequence[Mapping[str, float]]],
           metrics: Sequence[str] = METRICS,
           base: str = "private") -> dict[str, dict[str, dict[str, float]]]:
    """For each other variant and metric: the median of the per-round
    variant/base ratios and their spread (min, max)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, seen in rounds.items():
        if name == base:
            continue
        out[name] = {}
        for metric in metrics:
            pairs = [mine[metric] / theirs[metric]
                     for mine, theirs in zip(seen, rounds[base], strict=False) if theirs[metric]]
            if pairs:
                out[name][metric] = {"median": round(statistics.median(pairs), 3),
                                     "min": round(min(pairs), 3), "max": round(max(pairs), 3)}
    return out


def _published(client: redis.Redis) -> int:
    """PUBLISH calls the primary has run (those inside publish.lua included)."""
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


def _pids(a: ServerProc, b: ServerProc) -> Callable[[], PidGroups]:
    groups = {"a": [a.proc.pid if a.proc else 0], "b": [b.proc.pid if b.proc else 0]}
    return lambda: groups


def measure(*, pairs: int, clients: int, messages: int, window: int, body_bytes: int,
            uvloop: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="chat-privpaths-"))
    cluster = Cluster(root, uvloop=uvloop)
    run_id = secrets.token_hex(3)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    try:
        cluster.start()
        servers: dict[str, tuple[ServerProc, ServerProc]] = {
            name: (cluster.start_server(f"{name}-a", env=env),
                   cluster.start_server(f"{name}-b", env=env))
            for name, env in VARIANTS.items()}
        rnames = [f"r{run_id}x{i}" for i in range(clients)]
        tokens = asyncio.run(make_users(servers["private"][0].url,
                                        [f"s{run_id}x{i}" for i in range(clients)] + rnames))
        primary = redis.Redis.from_url(cluster.primary_url())
        for r in range(pairs + 1):  # round 0 warms up (scripts, connections, allocator)
            for name, (a, b) in servers.items():
                plan = Plan(kind="chat", sender_url=a.url, receiver_url=b.url,
                            senders=list(zip(tokens[:clients], rnames, strict=True)),
                            receivers=list(zip(tokens[clients:], rnames, strict=True)),
                            window=window, duration_s=60.0, max_count=messages,
                            body_bytes=body_bytes, tag=f"{name}{r}{run_id}", uvloop=uvloop)
                cluster.rewrite_aofs()
                before = _published(primary)
                step = run_step(plan, f"{name} round {r}", cpu_pids=_pids(a, b))
                if r:
                    rounds[name].append(round_numbers(step, _published(primary) - before))
        primary.close()
    finally:
        cluster.stop()
    shutil.rmtree(root, ignore_errors=True)
    return {"machine": report.machine(),
            "config": {"pairs": pairs, "clients": clients, "messages_per_round": messages,
                       "window": window, "body_bytes": body_bytes,
                       "loop": "uvloop" if uvloop else "asyncio"},
            "ratios": ratios(rounds), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.privpaths", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5, help="measured rounds (each variant once)")
    p.add_argument("--clients", type=int, default=100, help="senders, and as many receivers")
    p.add_argument("--messages", type=int, default=15_000, help="messages per round")
    p.add_argument("--window", type=int, default=4, help="sends in flight per sender")
    p.add_argument("--body-bytes", type=int, default=256)
    p.add_argument("--asyncio", action="store_true", help="the standard loop, not uvloop")
    a = p.parse_args(argv)
    print(json.dumps(measure(pairs=a.pairs, clients=a.clients, messages=a.messages,
                             window=a.window, body_bytes=a.body_bytes, uvloop=not a.asyncio),
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
