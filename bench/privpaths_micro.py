"""`python -m bench.privpaths_micro`: each private fast path alone, against its
public-API variant, in ONE run: what `python -m bench.privpaths` measures
inside whole servers, without the rest of the server's work around it.

- frames: a process writes one frame to each of `--conns` WebSocket
  connections, yields to the loop (as a fan-out of one message does), and
  again, `--frames` times, through server/conn/ws_adapter.write_text; a
  reader process reads them all. The writer's CPU per 1,000 frames and its
  frames/s, from the first write until every reader has them all.
- pubsub: a listener process reads `--messages` pub/sub messages through
  server/storage/pubsub_reader.PubSubReader while this process publishes
  them, `--batch` per pipeline, paced to `--rate` a second. The listener's
  CPU per 1,000 messages and its messages/s.

Each variant is its own process, with or without the switch that module
reads (CHAT_BENCH_PUBLIC_WS_WRITE, CHAT_BENCH_PUBLIC_PUBSUB_READ); the
variants alternate (private, public, private, ...) after a warm-up pair,
and each pair's public/private ratio is reported as a median and spread.
CPU is the measured process's utime+stime (time.process_time()).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import uvloop
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench.privpaths import ratios
from tests.procs import ROOT, RedisNode, free_port

SWITCHES = {"frames": "CHAT_BENCH_PUBLIC_WS_WRITE", "pubsub": "CHAT_BENCH_PUBLIC_PUBSUB_READ"}
METRICS = ("cpu_ms_per_1k", "per_s")
#: A pushed message of a 256-character body, about as the server frames it.
FRAME = json.dumps({"event": "message", "message": {
    "msg_id": "0123456789abcdef0123456789abcdef", "from": "sender-name", "to": "receiver",
    "body": "x" * 256, "ts": 1764763200000, "seq": "1764763200000-0"}}).encode()


async def write_frames(conns: int, frames: int) -> dict[str, float]:
    from server.conn import ws_adapter  # reads its switch at import: in this process only

    opened: list[ServerConnection] = []
    all_open, finished = asyncio.Event(), asyncio.Event()
    done = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal done
        opened.append(ws)
        if len(opened) == conns:
            all_open.set()
        await ws.recv()  # the reader's "done": it has every frame
        done += 1
        if done == conns:
            finished.set()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=4) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        reader = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.privpaths_micro", "read-frames", str(port), str(conns),
            str(frames), cwd=ROOT, env=_without_switches())
        await asyncio.wait_for(all_open.wait(), 60)
        cpu, wall = time.process_time(), time.monotonic()
        for _ in range(frames):
            for ws in opened:
                ws_adapter.write_text(ws, FRAME)
            await asyncio.sleep(0)
        await asyncio.wait_for(finished.wait(), 120)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        await reader.wait()
    return _numbers(cpu, wall, conns * frames)


async def read_frames(port: int, conns: int, frames: int) -> None:
    async def one() -> None:
        async with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None,
                           open_timeout=60) as ws:
            for _ in range(frames):
                await ws.recv()
            await ws.send("done")
            await ws.wait_closed()

    await asyncio.gather(*(one() for _ in range(conns)))


async def listen(url: str, messages: int) -> dict[str, float]:
    from server.storage.pubsub_reader import PubSubReader  # reads its switch at import

    reader = PubSubReader(redis.asyncio.Redis.from_url(url, decode_responses=True))
    await reader.pubsub.subscribe("bench:privpaths")
    while await reader.read(0.2):
        pass  # the subscribe confirmation
    print("ready", flush=True)
    got = len(await reader.read(30.0))  # the first message starts the clock
    cpu, wall = time.process_time(), time.monotonic()
    while got < messages:
        got += len(await reader.read(5.0))
    return _numbers(time.process_time() - cpu, time.monotonic() - wall, messages)


def publish(url: str, messages: int, batch: int, rate: float, listener: subprocess.Popen[str]
            ) -> None:
    assert listener.stdout is not None
    if listener.stdout.readline().strip() != "ready":
        raise RuntimeError("the listener did not subscribe")
    client = redis.Redis.from_url(url)
    started = time.monotonic()
    for sent in range(0, messages, batch):
        time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        pipe = client.pipeline(transaction=False)
        for _ in range(min(batch, messages - sent)):
            pipe.publish("bench:privpaths", FRAME)
        pipe.execute()
    client.close()


def _numbers(cpu_s: float, wall_s: float, count: int) -> dict[str, float]:
    return {"cpu_ms_per_1k": round(cpu_s * 1e6 / count, 3), "per_s": round(count / wall_s, 1)}


def _without_switches() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SWITCHES.values()}


def one_round(path: str, public: bool, a: argparse.Namespace, url: str) -> dict[str, float]:
    """One measurement of `path` in a fresh process, with or without its switch."""
    env = {**_without_switches(), **({SWITCHES[path]: "1"} if public else {})}
    if path == "frames":
        args = ["write-frames", str(a.conns), str(a.frames)]
    else:
        args = ["listen", url, str(a.messages)]
    proc = subprocess.Popen([sys.executable, "-m", "bench.privpaths_micro", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        if path == "pubsub":
            publish(url, a.messages, a.batch, a.rate, proc)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    numbers: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return numbers


def measure(a: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"config": vars(a)}
    with tempfile.TemporaryDirectory(prefix="privpaths-micro-") as tmp:
        node = RedisNode(datadir=Path(tmp), port=free_port())
        node.start()
        try:
            for path in ("frames", "pubsub"):
                rounds: dict[str, list[dict[str, float]]] = {"private": [], "public": []}
                for r in range(a.pairs + 1):  # pair 0 warms up (page cache, allocator)
                    for name in rounds:
                        numbers = one_round(path, name == "public", a, node.url)
                        print(f"{path} {name} pair {r}: {numbers}", file=sys.stderr, flush=True)
                        if r:
                            rounds[name].append(numbers)
                result[path] = {"ratios": ratios(rounds, METRICS)["public"], "rounds": rounds}
        finally:
            node.stop()
    return result


def _run(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as the server runs
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["write-frames"]:
        print(json.dumps(_run(write_frames(int(argv[1]), int(argv[2])))))
        return 0
    if argv[:1] == ["read-frames"]:
        _run(read_frames(int(argv[1]), int(argv[2]), int(argv[3])))
        return 0
    if argv[:1] == ["listen"]:
        print(json.dumps(_run(listen(argv[1], int(argv[2])))))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.privpaths_micro", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=7, help="measured private/public pairs")
    p.add_argument("--conns", type=int, default=200, help="frames: connections")
    p.add_argument("--frames", type=int, default=200, help="frames: per connection")
    p.add_argument("--messages", type=int, default=40_000, help="pubsub: messages per round")
    p.add_argument("--batch", type=int, default=8, help="pubsub: PUBLISHes per pipeline")
    p.add_argument("--rate", type=float, default=8000, help="pubsub: messages a second")
    print(json.dumps(measure(p.parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
