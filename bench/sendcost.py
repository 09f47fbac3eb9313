"""`python -m bench.sendcost`: the primary's CPU per 1,000 delivered messages,
before and after a change of the storage scripts, in ONE run on one Valkey.

`make bench` judges the primary's CPU per message from a whole-system run on
a shared 2-core machine, where it moves with everything else that runs.
This isolates it: one primary (AOF on, two replicas so WAIT 2 and the
replication feed are real), and exactly the calls a batch of sends costs it
as the group committer and the publisher issue them (one merged send.lua
call + INCR + WAIT 2 in one pipeline, then one publish.lua call with the
batch's notifications, read by a subscriber), plus the receivers' merged
acks (one ack.lua call for every recipient every ACK_EVERY batches). The
variants take turns, rounds interleaved, so a neighbour's load falls on all
of them alike; the primary's utime+stime comes from /proc.

Variants (bench/script_variants.py): `243df5b` (before the dedupe window:
the 0.0604 CPU-s per 1,000 of the last full bench), `680621c` (dedupe window
+ quotas), `93f6b9a` (the last make bench: runs of neighbouring sends only),
`current` (the scripts of this checkout, called as
server/store.py calls them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench import cpu
from bench.script_variants import Variant, variants
from server import keys
from server.wire import notifications, protocol
from tests.procs import RedisNode, find_server_binary, free_port

RECIPIENTS = 50
ACK_EVERY = 4  # batches between acks: ~5 messages per ack per recipient, as in make bench
BASELINES = ("243df5b", "680621c", "93f6b9a")


class Drain(threading.Thread):
    """A subscriber to every recipient's channel that reads what is published,
    as instance B does (an unread subscriber would only fill a buffer)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(*(keys.channel(f"r{i}") for i in range(RECIPIENTS)))
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            self.pubsub.get_message(timeout=0.05)


def recipient(b: int, j: int, *, batch: int, run: int, spread: bool) -> int:
    """Which recipient send j of batch b goes to: `run` sends to each recipient
    per batch, next to each other (a client's pipelined sends) or `spread`
    through the batch (sends that arrived one at a time, between others')."""
    if not spread:
        return (b * batch + j) // run % RECIPIENTS
    per_batch = batch // run
    return (b * per_batch + j % per_batch) % RECIPIENTS


def one_round(client: redis.Redis, v: Variant, shas: dict[str, str], *, messages: int,
              batch: int, run: int, body: str, tag: str, spread: bool = False) -> None:
    """`messages` sends (batches of `batch`, `run` to one recipient, see
    `recipient`), their notifications and the acks."""
    tails: dict[str, str] = {}
    for b in range(messages // batch):
        now = int(time.time() * 1000)
        call_keys: list[str] = []
        call_args: list[Any] = []
        notes: list[tuple[str, bytes]] = []
        for j in range(batch):
            i = recipient(b, j, batch=batch, run=run, spread=spread)
            to, msg_id = f"r{i}", f"{tag}-{b}-{j}"
            k, a = v.send(f"s{i}", to, msg_id, body, now)
            call_keys += k
            call_args += a
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(shas["send"], len(call_keys), *call_keys, *call_args)
        pipe.incr(keys.COMMIT)
        pipe.execute_command("WAIT", 2, 10_000)  # type: ignore[no-untyped-call]
        replies, _, acked = pipe.execute()
        if acked < 2:
            raise RuntimeError(f"WAIT reached {acked} of 2 replicas")
        for j, reply in enumerate(replies):
            status = reply[0].decode()
            if status != "ok":
                raise RuntimeError(f"{v.name}: send answered {reply!r}")
            i = recipient(b, j, batch=batch, run=run, spread=spread)
            seq, prev = reply[1].decode(), reply[2].decode()
            msg = protocol.message(msg_id=f"{tag}-{b}-{j}", sender=f"s{i}", to=f"r{i}",
                                   body=body, ts=now, seq=seq)
            notes.append((f"r{i}", notifications.message(seq, prev, msg)))
            tails[f"r{i}"] = seq
        client.evalsha(shas["publish"], 0, *v.publish(notes))
        if (b + 1) % ACK_EVERY == 0 or b == messages // batch - 1:
            ack_keys: list[str] = []
            ack_args: list[Any] = []
            for name, seq in tails.items():
                ms, n = seq.split("-")
                k, a = v.ack(name, f"{ms}-{int(n) + 1}")
                ack_keys += k
                ack_args += a
            client.evalsha(shas["ack"], len(ack_keys), *ack_keys, *ack_args)
            tails.clear()


def measure(*, rounds: int, messages: int, batch: int, run: int, body_bytes: int,
            only: list[str] | None = None, callgrind: bool = False,
            spread: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sendcost-") as tmp:
        nodes = [RedisNode(datadir=Path(tmp) / "n0", port=free_port())]
        nodes += [RedisNode(datadir=Path(tmp) / f"n{i}", port=free_port(),
                            replicaof=nodes[0].address) for i in (1, 2)]
        counter = Callgrind(Path(tmp)) if callgrind else None
        try:
            if counter is None:
                nodes[0].start()
            else:
                counter.start(nodes[0])
            for node in nodes[1:]:
                node.start()
            return _measure(nodes, counter, rounds=rounds, messages=messages, batch=batch,
                            run=run, body_bytes=body_bytes, only=only, spread=spread)
        finally:
            for node in nodes:
                node.stop()


class Callgrind:
    """The primary under `valgrind --tool=callgrind`: instructions per round."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pid = 0

    def start(self, node: RedisNode) -> None:
        wrapper = self.folder / "valkey-under-callgrind"
        wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind -q "
                           f"--callgrind-out-file={self.folder}/callgrind.%p "
                           f"{find_server_binary()} \"$@\"\n")
        wrapper.chmod(0o755)
        saved = os.environ.get("CHAT_REDIS_SERVER")
        os.environ["CHAT_REDIS_SERVER"] = str(wrapper)
        try:
            node.start(timeout=120)
        finally:
            if saved is None:
                del os.environ["CHAT_REDIS_SERVER"]
            else:
                os.environ["CHAT_REDIS_SERVER"] = saved
        self.pid = node.pid or 0

    def zero(self) -> None:
        subprocess.run(["callgrind_control", "-z", str(self.pid)], check=True,
                       capture_output=True)

    def instructions(self) -> int:
        """Instructions since zero(): dump, read the newest dump's totals."""
        subprocess.run(["callgrind_control", "-d", str(self.pid)], check=True,
                       capture_output=True)
        newest = max(self.folder.glob(f"callgrind.{self.pid}.*"),
                     key=lambda f: f.stat().st_mtime_ns)
        for line in newest.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
        raise RuntimeError(f"no totals in {newest}")


def _measure(nodes: list[RedisNode], counter: Callgrind | None, *, rounds: int, messages: int,
             batch: int, run: int, body_bytes: int, only: list[str] | None,
             spread: bool) -> dict[str, Any]:
    primary = nodes[0]
    client = redis.Redis.from_url(primary.url)
    deadline = time.monotonic() + 60
    while sum(1 for k, v in client.info("replication").items()
              if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online") < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the replicas did not come online")
        time.sleep(0.1)
    print(f"primary pid {primary.pid}", file=sys.stderr, flush=True)
    drain = Drain(primary.url)
    drain.start()
    body = "x" * body_bytes
    per_k: dict[str, list[float]] = {}
    ir_per_msg: dict[str, list[float]] = {}
    try:
        for r in range(rounds + 1):  # round 0 warms up (script cache, allocator)
            for v in variants():
                if only and v.name not in only:
                    continue
                client.flushall()
                client.execute_command("WAIT", 2, 10_000)  # type: ignore[no-untyped-call]
                for i in range(RECIPIENTS):
                    client.hset(keys.account(f"r{i}"), mapping={"pw": "-", "gen": "g"})
                shas = {n: client.script_load(src) for n, src in v.scripts.items()}
                client.execute_command("WAIT", 2, 10_000)  # type: ignore[no-untyped-call]
                pids = {"primary": [primary.pid or 0]}
                if counter is not None:
                    counter.zero()
                before = cpu.snapshot(pids)
                one_round(client, v, shas, messages=messages, batch=batch, run=run, body=body,
                          tag=f"{v.name}-{r}", spread=spread)
                used = cpu.usage(before, cpu.snapshot(pids), messages)
                if r:
                    per_k.setdefault(v.name, []).append(
                        used["processes"]["primary"]["cpu_s"] * 1000 / messages)
                    if counter is not None:
                        ir_per_msg.setdefault(v.name, []).append(
                            counter.instructions() / messages)
    finally:
        drain.stopping = True
        drain.join()
        client.close()
    medians = {name: statistics.median(xs) for name, xs in per_k.items()}
    ir = {name: statistics.median(xs) for name, xs in ir_per_msg.items()}
    return {"messages_per_round": messages, "rounds": rounds, "batch": batch, "run": run,
            "spread": spread,
            "body_bytes": body_bytes, "cpu_s_per_1k": {n: round(m, 4) for n, m in
                                                       medians.items()},
            "all_rounds": {n: [round(x, 4) for x in xs] for n, xs in per_k.items()},
            **{f"current/{old}": round(medians["current"] / medians[old], 3)
               for old in BASELINES if "current" in medians and old in medians},
            "instructions_per_msg": {n: round(x) for n, x in ir.items()},
            **{f"instructions current/{old}": round(ir["current"] / ir[old], 3)
               for old in BASELINES if "current" in ir and old in ir}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sendcost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7, help="measured rounds per variant")
    p.add_argument("--messages", type=int, default=20_480, help="messages per round")
    p.add_argument("--batch", type=int, default=64, help="sends per group-commit batch")
    p.add_argument("--run", type=int, default=4,
                   help="neighbouring sends to one recipient in a batch (the bench's senders "
                   "keep 4 in flight, each to its own receiver)")
    p.add_argument("--spread", action="store_true",
                   help="a recipient's sends spread through the batch, between other "
                   "recipients' (clients that do not pipeline), instead of next to each other")
    p.add_argument("--body-bytes", type=int, default=256)
    p.add_argument("--only", action="append", help="measure only this variant (repeatable)")
    p.add_argument("--callgrind", action="store_true",
                   help="run the primary under valgrind and count its instructions (slow)")
    a = p.parse_args(argv)
    print(json.dumps(measure(rounds=a.rounds, messages=a.messages, batch=a.batch, run=a.run,
                             body_bytes=a.body_bytes, only=a.only, callgrind=a.callgrind,
                             spread=a.spread),
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
