"""`python -m bench.ab`: two (or more) server checkouts at ONE offered rate, in one run.

A regression between commits is only visible against the same machine
state: `make bench` runs minutes or days apart move with the neighbours'
load. Here servers of each checkout (a `git worktree` of the old commit,
say) run side by side on one local HA set, each pair with its own senders
and receivers, and open-loop steps at the same rate take turns, round
after round, every node's AOF rewritten before each step. Per step: the
send→ok and send→delivered percentiles, the per-process CPU per 1,000
delivered (bench/cpu.py) and the commands the primary ran (INFO
commandstats), so a difference in latency can be told from a difference in
work.

    git worktree add --detach /tmp/old aeaa34e
    python -m bench.ab --rate 1000 --rounds 4 old=/tmp/old new=.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import secrets
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from bench.cluster import SERVER_FLAGS, Cluster, make_users
from bench.loadgen import Plan
from bench.runner import run_step
from tests.procs import ServerProc

CLIENTS = 50


def accepted_flags(checkout: Path) -> list[str]:
    """SERVER_FLAGS less the flags an older checkout's server does not know."""
    helptext = subprocess.run([sys.executable, "-m", "server", "--help"], cwd=checkout,
                              capture_output=True, text=True, check=True).stdout
    flags: list[str] = []
    for name, value in zip(SERVER_FLAGS[::2], SERVER_FLAGS[1::2], strict=True):
        if name in helptext:
            flags += [name, value]
    return flags


def start_server(cluster: Cluster, name: str, checkout: Path, flags: list[str]) -> ServerProc:
    args = ["--host", "127.0.0.1", "--port", "0", "--instance-id", name,
            "--sentinel", cluster.local.sentinel_arg, "--sentinel-master", "chat", *flags]
    proc = ServerProc(args=args, logdir=cluster.root, name=name, cwd=checkout,
                      env={"CHAT_EVENT_LOOP": "uvloop" if cluster.uvloop else "asyncio"})
    cluster.servers[name] = proc
    return proc.start()


def start_side(cluster: Cluster, label: str, checkout: Path, *, rate: float,
               duration_s: float, **plan: Any) -> Plan:
    """Servers `label`-a and -b of `checkout`, CLIENTS senders on A to as many
    receivers on B: the open-loop Plan of that side (`plan`: more Plan fields)."""
    flags = accepted_flags(checkout)
    a = start_server(cluster, f"{label}-a", checkout, flags)
    b = start_server(cluster, f"{label}-b", checkout, flags)
    tag = f"{label}{secrets.token_hex(2)}"
    receivers = [f"r{tag}x{i}" for i in range(CLIENTS)]
    tokens = asyncio.run(make_users(a.url, [f"s{tag}x{i}" for i in range(CLIENTS)] + receivers))
    return Plan(kind="chat", sender_url=a.url, receiver_url=b.url,
                senders=list(zip(tokens[:CLIENTS], receivers, strict=True)),
                receivers=list(zip(tokens[CLIENTS:], receivers, strict=True)),
                window=4, duration_s=duration_s, max_count=10**7, body_bytes=256, tag=tag,
                uvloop=cluster.uvloop, in_time_s=1.0, mode="open", rate=rate, **plan)


def command_calls(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, Any] = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def run(sides: dict[str, Path], *, rate: float, rounds: int, seconds: float,
        uvloop: bool) -> list[dict[str, Any]]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="chat-ab-")), uvloop=uvloop)
    steps: list[dict[str, Any]] = []
    try:
        cluster.start()
        plans = {label: start_side(cluster, label, checkout, rate=rate, duration_s=seconds)
                 for label, checkout in sides.items()}
        for r in range(rounds):
            for label, plan in plans.items():
                cluster.rewrite_aofs()
                before = command_calls(cluster.primary_url())
                step = run_step(replace(plan, tag=f"{plan.tag}r{r}"), f"{label} round {r}",
                                cpu_pids=functools.partial(_groups, cluster, label))
                after = command_calls(cluster.primary_url())
                step.pop("raw")
                step.update(label=label, round=r, primary_calls={
                    name: n - before.get(name, 0) for name, n in after.items()
                    if n > before.get(name, 0)})
                steps.append(step)
                print(json.dumps(_line(step)), flush=True)
    finally:
        cluster.stop()
    return steps


def _groups(cluster: Cluster, label: str) -> dict[str, list[int]]:
    """Every process of the run but the other sides' servers."""
    return {name: pids for name, pids in cluster.pid_groups().items()
            if not name.startswith("server ") or name.startswith(f"server {label}-")}


def _line(step: dict[str, Any]) -> dict[str, Any]:
    cpu = (step.get("cpu") or {}).get("processes", {})
    return {"label": step["label"], "round": step["round"],
            "send_ok_ms": step["send_ok_ms"], "errors": step["errors"],
            "cpu_s_per_1k": {name: v["cpu_s_per_1k"] for name, v in cpu.items()},
            "primary_calls_per_msg": round(
                sum(step["primary_calls"].values()) / max(1, step["delivered"]), 2)}


def parse_sides(specs: list[str]) -> dict[str, Path]:
    sides = {}
    for spec in specs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise ValueError(f"expected LABEL=CHECKOUT, got {spec!r}")
        sides[label] = Path(folder).resolve()
    return sides


def parser(prog: str, doc: str | None, out: str) -> argparse.ArgumentParser:
    """The arguments every A/B run takes: sides, rate, rounds, loop, output file."""
    p = argparse.ArgumentParser(prog=prog, description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sides", nargs="+", metavar="LABEL=CHECKOUT")
    p.add_argument("--rate", type=float, required=True, help="offered msg/s of every step")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--asyncio", action="store_true", help="standard loop instead of uvloop")
    p.add_argument("--out", type=Path, default=Path(out))
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m bench.ab", __doc__, "bench/out/ab.json")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    a = p.parse_args(argv)
    steps = run(parse_sides(a.sides), rate=a.rate, rounds=a.rounds, seconds=a.seconds,
                uvloop=not a.asyncio)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(steps, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
