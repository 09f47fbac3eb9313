"""A bounded random-frame fuzzer against a live server: junk text, binary frames and
raw bytes (before and after a real handshake) never crash it, and
`python -m server.invariants` finds Redis consistent afterwards.

Longer runs: FUZZ_FRAMES=100000 FUZZ_SECONDS=600 FUZZ_SEED=N.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time

from websockets.sync.client import connect

from tests.conftest import StartServer
from tests.integration.fuzz_checks import (
    NO_THROTTLE,
    assert_healthy,
    check_reply,
    expected_id,
    request,
    run_invariants,
)
from tests.wsclient import Peer

FRAMES = int(os.environ.get("FUZZ_FRAMES", "1500"))
FRAME_SECONDS = float(os.environ.get("FUZZ_SECONDS", "6"))
SEED = int(os.environ.get("FUZZ_SEED", "7"))


def random_frame(rng: random.Random) -> str | bytes:
    kind = rng.randrange(6)
    size = rng.choice([0, 1, 2, 10, 100, 1000, 60_000])
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:  # up to 3 UTF-8 bytes a character: stay under the 64 KiB frame limit
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xD800)]))
                       for _ in range(min(size, 20_000)))
    if kind == 2:
        return "[" * (size // 2) + "]" * rng.randrange(size // 2 + 1)
    if kind == 3:
        return '{"op": "send", "id": 1, "to": ' + '{"a": ' * min(size, 5000) + "1"
    if kind == 4:
        return json.dumps({"op": "send", "id": rng.random(), "x": [None] * (size // 10)})
    return "".join(rng.choice('{}[]",:0123456789-.eEtrufalsn \\u') for _ in range(size))


async def test_random_frames_and_raw_bytes_never_crash_the_server(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*NO_THROTTLE, redis_url=redis_url)

    def fuzz_frames() -> int:
        rng, sent, end = random.Random(SEED), 0, time.monotonic() + FRAME_SECONDS
        with connect(server.url, max_size=None) as ws:
            while sent < FRAMES and time.monotonic() < end:
                frame = random_frame(rng)
                text = frame if isinstance(frame, str) else None
                reply = request(ws, frame)
                check_reply(reply, expected_id(text) if text is not None else None)
                assert reply["ok"] is False
                sent += 1
        return sent

    def fuzz_bytes() -> None:
        rng = random.Random(SEED + 1)
        for i in range(40):
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                if i % 2:  # garbage after a real handshake: random frame headers and payloads
                    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Key: "
                                 b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                with_garbage = rng.randbytes(rng.randrange(1, 4000))
                try:
                    sock.sendall(with_garbage)
                    sock.shutdown(socket.SHUT_WR)  # EOF: no waiting for the handshake timeout
                    while sock.recv(65536):
                        pass
                except (ConnectionResetError, BrokenPipeError, TimeoutError):
                    pass

    sent = await asyncio.to_thread(fuzz_frames)
    assert sent >= 100, f"only {sent} frames in the time bound"
    await asyncio.to_thread(fuzz_bytes)
    assert_healthy(server)
    peer = await Peer.connect(server.url)
    await peer.register_login("after")
    await peer.send_message("after", "still serving")
    run_invariants(redis_url)
