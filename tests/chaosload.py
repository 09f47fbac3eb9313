"""Load and bookkeeping for chaos tests: what was acked, what arrived, what is wrong.

Senders (ChatClient) send numbered messages one after another and record
every send the server acknowledged; a send the client gave up on is
recorded apart (it may or may not arrive: only acked sends are promised).
Receivers iterate `messages()` (the client's dedupe applied), record every
message and ack it after recording, like an application that acks after
handling. `verify()` checks the promise of PROTOCOL.md: every acked message
arrived, none twice, in send order per sender, and says exactly which ones
broke it. tests/outage_probe.py times the outage a fault causes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from client import ChatClient, Message, RetryableError

PASSWORD = "correct horse"


@dataclass(frozen=True)
class Sent:
    sender: str
    to: str
    msg_id: str
    #: Position among this sender's sends: delivery must keep this order.
    index: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.msg_id)


def msg_id_for(sender: str, index: int) -> str:
    return f"{sender}-{index:06d}"


def index_of(message: Message) -> int:
    """The send index a Sender put into the msg_id (-1 if it is not ours)."""
    head, _, tail = message.msg_id.rpartition("-")
    return int(tail) if head == message.sender and tail.isdigit() else -1


async def logged_in(client: ChatClient, name: str, *, register: bool = True) -> ChatClient:
    await client.connect()
    if register:
        await client.register(name, PASSWORD)
    await client.login(name, PASSWORD)
    return client


class Sender:
    """Sends to one recipient until stopped; `acked` lists the confirmed sends."""

    def __init__(self, client: ChatClient, name: str, to: str, *, pause: float = 0.005) -> None:
        self.client = client
        self.name = name
        self.to = to
        self.pause = pause
        self.acked: list[Sent] = []
        #: time.monotonic() of each ack, parallel to `acked`.
        self.acked_at: list[float] = []
        #: Sends the client gave up on (retry deadline): not promised either way.
        self.unconfirmed: list[Sent] = []
        self.errors: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        for index in itertools.count():
            if stop.is_set():
                return
            sent = Sent(self.name, self.to, msg_id_for(self.name, index), index)
            try:
                await self.client.send(self.to, f"{self.name} #{index}", msg_id=sent.msg_id)
            except RetryableError as exc:
                self.unconfirmed.append(sent)
                self.errors[exc.code] += 1
            else:
                self.acked.append(sent)
                self.acked_at.append(time.monotonic())
            await asyncio.sleep(self.pause)


class Receiver:
    """Records what `messages()` yields and acks each message after recording it."""

    def __init__(self, client: ChatClient, name: str) -> None:
        self.client = client
        self.name = name
        self.received: list[Message] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"receiver-{self.name}")

    async def _run(self) -> None:
        async for message in self.client.messages():
            self.received.append(message)
            # Acks are cumulative: if this one fails, the next one covers it.
            with contextlib.suppress(RetryableError):
                await self.client.ack(message)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def keys(self) -> set[tuple[str, str]]:
        return {m.key for m in self.received}


@dataclass
class Report:
    acked: int = 0
    received: int = 0
    missing: list[Sent] = field(default_factory=list)
    duplicated: list[tuple[str, str]] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.out_of_order or self.unknown)

    def describe(self, limit: int = 20) -> str:
        lines = [f"{self.acked} acked sends, {self.received} messages received"]
        for title, items in (
            ("acked but never received", [f"{s.sender}->{s.to} {s.msg_id}" for s in self.missing]),
            ("received twice after dedupe", [f"{s} {m}" for s, m in self.duplicated]),
            ("out of order", self.out_of_order),
            ("received but never sent", [f"{s} {m}" for s, m in self.unknown]),
        ):
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                lines.append(f"{len(items)} {title}: {', '.join(items[:limit])}{more}")
        return "\n".join(lines)


def verify(senders: Iterable[Sender], receivers: Iterable[Receiver]) -> Report:
    """Check every acked send against what the receivers recorded."""
    senders, receivers = list(senders), list(receivers)
    report = Report()
    attempted = {s.key for sender in senders for s in (*sender.acked, *sender.unconfirmed)}
    by_name = {r.name: r for r in receivers}
    for sender in senders:
        report.acked += len(sender.acked)
        got = by_name[sender.to].keys()
        report.missing += [s for s in sender.acked if s.key not in got]
    for receiver in receivers:
        report.received += len(receiver.received)
        counts = Counter(m.key for m in receiver.received)
        report.duplicated += sorted(k for k, n in counts.items() if n > 1)
        report.unknown += sorted(k for k in counts if k not in attempted)
        last: dict[str, Message] = {}
        for message in receiver.received:
            before = last.get(message.sender)
            if before is not None and index_of(message) <= index_of(before):
                report.out_of_order.append(
                    f"{message.sender}->{receiver.name}: {message.msg_id} after {before.msg_id}"
                )
            last[message.sender] = message
    return report


def all_delivered(senders: Iterable[Sender], receivers: Iterable[Receiver]) -> bool:
    by_name = {r.name: r.keys() for r in receivers}
    return all(s.key in by_name[sender.to] for sender in senders for s in sender.acked)


async def eventually(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll `predicate` every 20 ms; AssertionError naming `what` after `within` s."""
    end = time.monotonic() + within
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {within:g}s")
        await asyncio.sleep(0.02)


class Load:
    """Senders and receivers run together; the senders stop first, then the receivers."""

    def __init__(self, senders: list[Sender], receivers: list[Receiver]) -> None:
        self.senders = senders
        self.receivers = receivers
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for receiver in self.receivers:
            receiver.start()
        self._tasks = [asyncio.create_task(s.run(self._stop), name=f"sender-{s.name}")
                       for s in self.senders]

    def acked(self) -> int:
        return sum(len(s.acked) for s in self.senders)

    async def wait_progress(self, sends: int, within: float, what: str) -> None:
        """Wait until every sender has `sends` more acked sends than now."""
        targets = [(s, len(s.acked) + sends) for s in self.senders]
        await eventually(lambda: all(len(s.acked) >= n for s, n in targets), within,
                         f"{what}: every sender acks {sends} more sends")

    async def stop_sending(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)  # a sender's crash fails the test here

    async def finish(self, within: float = 30.0) -> Report:
        """Stop sending, give delivery `within` s to catch up, then verify."""
        await self.stop_sending()
        with contextlib.suppress(AssertionError):  # verify() names what is missing
            await eventually(lambda: all_delivered(self.senders, self.receivers), within,
                             "every acked message delivered")
        for receiver in self.receivers:
            await receiver.stop()
        return verify(self.senders, self.receivers)

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for receiver in self.receivers:
            await receiver.stop()
