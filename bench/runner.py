"""Runs one load step in two worker processes and shows progress on stderr.

Receivers (on instance B) and senders (on instance A) get a process each,
so the load generator can use both cores like the servers do. The parent
only polls shared counters for the progress line and collects results.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench import cpu, loadgen
from bench.loadgen import Counters, Plan
from bench.stats import summary

_CTX = multiprocessing.get_context("spawn")
#: After the last reply, how long pushes may still trail in.
DELIVERY_GRACE_S = 5.0


def _event_loop(plan: Plan) -> None:
    if plan.uvloop:
        import uvloop

        uvloop.install()


def _sender_main(plan: Plan, counters: Counters, out: Connection) -> None:
    _event_loop(plan)
    try:
        out.send(asyncio.run(loadgen.run_senders(plan, counters)))
    except Exception as exc:
        out.send({"fatal": f"senders: {type(exc).__name__}: {exc}"})


def _receiver_main(plan: Plan, counters: Counters, ready: Any, stop: Any,
                   out: Connection) -> None:
    _event_loop(plan)
    try:
        out.send(asyncio.run(loadgen.run_receivers(plan, counters, ready, stop)))
    except Exception as exc:
        ready.set()
        out.send({"fatal": f"receivers: {type(exc).__name__}: {exc}"})


class Progress:
    """One updating line on a terminal; a line every few seconds otherwise (CI logs)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.started = time.monotonic()

    def show(self, counters: Counters, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        c = list(counters)
        line = (f"{self.label}: {now - self.started:5.1f}s sent={c[loadgen.SENT]} "
                f"ok={c[loadgen.OK]} delivered={c[loadgen.DELIVERED]} err={c[loadgen.ERR]} "
                f"retries={c[loadgen.RETRIES]}")
        sys.stderr.write(("\r\x1b[K" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def run_step(plan: Plan, label: str, on_tick: Any = None,
             cpu_pids: Callable[[], cpu.PidGroups] | None = None,
             keep_samples: bool = False) -> dict[str, Any]:
    """Run `plan`; raw results of both sides plus summaries. `on_tick(elapsed,
    oks so far)` is called while it runs (the failover step kills the primary from it).
    With `cpu_pids`, the CPU of those processes, of both load processes and
    of this one is sampled from the first send until deliveries are in.
    `keep_samples` adds each delivery's arrival and latency to "raw" (soak)."""
    counters: Counters = _CTX.Array("q", loadgen.N_COUNTERS, lock=False)
    ready, stop = _CTX.Event(), _CTX.Event()
    recv_out, recv_in = _CTX.Pipe(duplex=False)
    send_out, send_in = _CTX.Pipe(duplex=False)
    receivers = _CTX.Process(target=_receiver_main, args=(plan, counters, ready, stop, recv_in))
    senders = _CTX.Process(target=_sender_main, args=(plan, counters, send_in))
    progress = Progress(label)
    receivers.start()
    try:
        if not ready.wait(120):
            raise RuntimeError(f"{label}: receivers did not connect")
        senders.start()
        started = time.monotonic()
        groups: dict[str, list[int]] = {}
        if cpu_pids is not None:
            groups = {**cpu_pids(), "load senders": [senders.pid or 0],
                      "load receivers": [receivers.pid or 0], "bench parent": [os.getpid()]}
        before: tuple[cpu.Snapshot, int] | None = None
        sent: dict[str, Any] | None = None
        while sent is None:
            if groups and before is None and counters[loadgen.SENT]:
                before = cpu.snapshot(groups), counters[loadgen.DELIVERED]
            if send_out.poll(0.1 if before or not groups else 0.01):
                sent = send_out.recv()
            elif not senders.is_alive() and not send_out.poll(0):
                sent = {"fatal": f"sender process died ({senders.exitcode})"}
            progress.show(counters)
            if on_tick is not None:
                on_tick(time.monotonic() - started, counters[loadgen.OK])
        deadline = time.monotonic() + min(DELIVERY_GRACE_S, plan.drain_s)
        while counters[loadgen.DELIVERED] < counters[loadgen.OK] and time.monotonic() < deadline:
            time.sleep(0.05)
            progress.show(counters)
        used = None if before is None else cpu.usage(
            before[0], cpu.snapshot(groups), counters[loadgen.DELIVERED] - before[1])
        progress.show(counters, force=True)
        progress.done()
        stop.set()
        got: dict[str, Any] = recv_out.recv() if recv_out.poll(60) else {"fatal": "no result"}
    finally:
        stop.set()
        for proc in (senders, receivers):
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    for side in (sent, got):
        if "fatal" in side:
            raise RuntimeError(side["fatal"])
    result = _summarize(plan, sent, got)
    result["cpu"] = used
    if keep_samples:
        result["raw"].update(arrivals=got["arrivals"], delivered_ms=got["delivered_ms"])
    return result


def _summarize(plan: Plan, sent: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    window = max(1e-6, (got["last_delivery"] or sent["t0"]) - sent["t0"])
    offered = in_time = None
    if plan.mode == "open":
        offered = min(plan.max_count, round(plan.rate * plan.duration_s))
        # Deliveries by the end of the schedule plus in_time_s (keeps-up rule).
        due = sent["t0"] + offered / plan.rate + plan.in_time_s
        in_time = sum(1 for t in got["arrivals"] if t <= due)
    return {
        "kind": plan.kind, "mode": plan.mode, "offered_rate": plan.rate or None,
        "offered_count": offered, "delivered_in_time": in_time,
        "in_time_s": plan.in_time_s if plan.mode == "open" else None,
        "window": plan.window if plan.mode == "closed" else None,
        "clients": len(plan.senders), "body_bytes": plan.body_bytes,
        "sent": sent["sent"], "ok": sent["ok"], "retries": sent["retries"],
        "errors": sent["errors"], "delivered": got["delivered"], "dups": got["dups"],
        "ok_per_s": round(sent["ok"] / max(1e-6, sent["issue_s"]), 1),
        "delivered_per_s": round(got["delivered"] / window, 1),
        "send_ok_ms": summary(sent["ok_ms"]),
        "send_delivered_ms": summary(got["delivered_ms"]),
        "raw": {"acked": sent["acked"], "ok_times": sent["ok_times"]},
    }
