"""The load engine that runs inside a worker process: senders or receivers.

Senders run closed-loop (each connection keeps `window` sends in flight:
the saturation point) or open-loop (a pacer schedules message k at
t0 + k/rate whatever the replies do, so queueing shows up as latency
instead of silently lowering the offered load). Latency is measured from
the scheduled time, which avoids coordinated omission. The scheduled time
also travels in the body, so the receiver process (another process, same
CLOCK_MONOTONIC) computes send->delivered without talking to the sender.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import MutableSequence
from dataclasses import dataclass, field
from typing import Any

from bench.drivers import ChatReceiver, ChatSender, Receiver, Sender

# Indexes of the shared counters the parent shows in its progress line.
SENT, OK, ERR, DELIVERED, DUP, RETRIES = range(6)
N_COUNTERS = 6

#: Worth resending with the same msg_id (PROTOCOL.md); everything else is final.
RETRYABLE = {"unavailable", "rate_limited"}
#: Resend after this plus up to as much again of jitter, as the client library does,
#: so a failover does not turn into a retry storm that slows the recovery.
RETRY_DELAY_S = 0.2
#: An open-loop sender with this many sends in flight is overloaded: shed.
MAX_IN_FLIGHT = 2000

#: A ctypes array shared with the parent (multiprocessing Array, lock=False).
Counters = MutableSequence[int]


@dataclass(frozen=True)
class Plan:
    """One load step, picklable for the worker processes."""

    kind: str  # "chat" (our server) or "peer" (socket.io)
    sender_url: str
    receiver_url: str
    #: (credential, recipient) per sender; credential is a token (chat) or unused (peer).
    senders: list[tuple[str, str]]
    #: (credential, name) per receiver.
    receivers: list[tuple[str, str]]
    mode: str = "closed"  # or "open"
    rate: float = 0.0  # open loop: messages/s over all senders
    window: int = 4  # closed loop: sends in flight per sender
    duration_s: float = 10.0
    max_count: int = 100_000
    body_bytes: int = 256
    tag: str = "b"
    keep_acked: bool = False  # return every acked msg_id and ok time (failover check)
    receiver_acks: bool = True
    drain_s: float = 15.0  # after the schedule: how long replies (and deliveries) may trail
    #: Deliveries up to this long after the last scheduled send count as in time.
    in_time_s: float = 1.0
    uvloop: bool = False


@dataclass
class _SendState:
    plan: Plan
    counters: Counters
    conns: list[Sender]
    in_flight: list[int]
    stop_at: float
    ok_ms: list[float] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    pending: set[asyncio.Task[None]] = field(default_factory=set)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(self, i: int) -> None:
        self.in_flight[i] -= 1
        if not any(self.in_flight):
            self.idle.set()

    async def attempt(self, i: int, msg_id: str, body: str, t_sched: int,
                      done: asyncio.Semaphore | None) -> None:
        def on_reply(error: str | None) -> None:
            now = time.monotonic_ns()
            if error is None:
                self.counters[OK] += 1
                self.ok_ms.append((now - t_sched) / 1e6)
                if self.plan.keep_acked:
                    self.ok_times.append(now / 1e9)
                    self.acked.append(msg_id)
            elif error in RETRYABLE and time.monotonic() < self.stop_at + self.plan.drain_s:
                self.counters[RETRIES] += 1
                asyncio.get_running_loop().call_later(RETRY_DELAY_S * (1 + random.random()),
                                                      self.spawn, i, msg_id,
                                                      body, t_sched, done)
                return
            else:
                self.counters[ERR] += 1
                self.errors[error] += 1
            self.finish(i)
            if done is not None:
                done.release()

        to = self.plan.senders[i][1]
        try:
            await self.conns[i].send(to, msg_id, body, on_reply)
        except Exception as exc:  # a dropped connection: that send is lost to us
            self.counters[ERR] += 1
            self.errors[f"send failed: {type(exc).__name__}"] += 1
            self.finish(i)

    def spawn(self, i: int, msg_id: str, body: str, t_sched: int,
              done: asyncio.Semaphore | None) -> None:
        task = asyncio.create_task(self.attempt(i, msg_id, body, t_sched, done))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def issue(self, i: int, k: int, t_sched: int, done: asyncio.Semaphore | None) -> None:
        self.counters[SENT] += 1
        self.in_flight[i] += 1
        self.idle.clear()
        body = f"{t_sched} ".ljust(self.plan.body_bytes, "x")
        await self.attempt(i, f"{self.plan.tag}-{i}-{k}", body, t_sched, done)


async def _open_sender(plan: Plan, credential: str) -> Sender:
    if plan.kind == "chat":
        return await ChatSender.open(plan.sender_url, credential)
    from bench.peer import SioSender

    return await SioSender.open(plan.sender_url)


async def run_senders(plan: Plan, counters: Counters) -> dict[str, Any]:
    conns = list(await asyncio.gather(*(_open_sender(plan, c) for c, _ in plan.senders)))
    n = len(conns)
    t0 = time.monotonic()
    state = _SendState(plan, counters, conns, [0] * n, stop_at=t0 + plan.duration_s)
    issued = 0

    async def closed_loop(i: int, share: int) -> None:
        window = asyncio.Semaphore(plan.window)
        for k in range(share):
            await window.acquire()
            if time.monotonic() >= state.stop_at:
                return
            await state.issue(i, k, time.monotonic_ns(), window)

    if plan.mode == "closed":
        shares = [plan.max_count // n + (1 if i < plan.max_count % n else 0) for i in range(n)]
        await asyncio.gather(*(closed_loop(i, shares[i]) for i in range(n)))
    else:
        start_ns = time.monotonic_ns()
        interval_ns = 1e9 / plan.rate
        while issued < plan.max_count and time.monotonic() < state.stop_at:
            due = min(plan.max_count, int((time.monotonic_ns() - start_ns) / interval_ns) + 1)
            while issued < due:
                i = issued % n
                if state.in_flight[i] >= MAX_IN_FLIGHT:
                    counters[ERR] += 1
                    state.errors["shed (sender overloaded)"] += 1
                else:
                    await state.issue(i, issued // n, int(start_ns + issued * interval_ns), None)
                issued += 1
            await asyncio.sleep(0.001)
    issue_end = time.monotonic()
    if any(state.in_flight):
        try:
            await asyncio.wait_for(state.idle.wait(), plan.drain_s)
        except TimeoutError:
            lost = sum(state.in_flight)
            counters[ERR] += lost
            state.errors["no reply in time"] += lost
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {
        "sent": counters[SENT], "ok": counters[OK], "retries": counters[RETRIES],
        "errors": dict(state.errors), "ok_ms": state.ok_ms, "ok_times": state.ok_times,
        "acked": state.acked, "t0": t0, "issue_s": issue_end - t0,
    }


async def run_receivers(plan: Plan, counters: Counters, ready: Any, stop: Any) -> dict[str, Any]:
    seen: set[str] = set()
    latency_ms: list[float] = []
    arrivals: list[float] = []  # monotonic seconds, to count deliveries in time

    def on_message(msg_id: str, body: str) -> None:
        now = time.monotonic_ns()
        if msg_id in seen:
            counters[DUP] += 1
            return
        seen.add(msg_id)
        counters[DELIVERED] += 1
        latency_ms.append((now - int(body.split(" ", 1)[0])) / 1e6)
        arrivals.append(now / 1e9)

    async def open_one(credential: str, name: str) -> Receiver:
        if plan.kind == "chat":
            return await ChatReceiver.open(plan.receiver_url, credential, on_message,
                                           ack=plan.receiver_acks)
        from bench.peer import SioReceiver

        return await SioReceiver.open(plan.receiver_url, name, on_message)

    conns = await asyncio.gather(*(open_one(c, name) for c, name in plan.receivers))
    ready.set()
    await asyncio.to_thread(stop.wait)  # a multiprocessing.Event set by the parent
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {"delivered": len(seen), "dups": counters[DUP], "delivered_ms": latency_ms,
            "arrivals": arrivals, "last_delivery": arrivals[-1] if arrivals else 0.0}
