"""The one place that reaches into websockets' connection beyond its public API.

websockets 17 (pinned in requirements.txt) offers `send()`, which awaits
the transport's drain in a task switch and a context manager per frame;
on the hot path that costs more than the write itself. What we need and
it lacks, done here with its internals so nothing else touches them:

- `write_text`: frame and hand one text frame to the transport at once
  (the sans-I/O `protocol.send_text` + the connection's `send_data`).
- `frame_waiting`: whether a frame is already received and queued (the
  assembler's queue), so pipelined sends can run as one group.

`pending_bytes` uses only asyncio's public transport API. The unit test
tests/unit/test_ws_adapter.py checks every attribute used here against the
installed websockets, so an upgrade that moves them fails loudly there.

`CHAT_BENCH_PUBLIC_WS_WRITE=1` (read here only, for `python -m
bench.privpaths`) makes `write_text` use the public `await ws.send()`
instead, in a task per frame because callers write from synchronous code;
it exists to measure what the internals save (docs/benchmarks.md,
"Private fast paths"), not to run a server with.
"""

from __future__ import annotations

import asyncio
import logging
import os

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

log = logging.getLogger(__name__)

#: Measurement only: the public `ws.send()` instead of the direct write.
PUBLIC_WRITE = os.environ.get("CHAT_BENCH_PUBLIC_WS_WRITE") == "1"


def is_open(ws: ServerConnection) -> bool:
    return ws.protocol.state is State.OPEN


def write_text(ws: ServerConnection, frame: bytes) -> bool:
    """Frame `frame` and hand it to the transport; False when the socket is gone.

    The transport buffers what the socket does not take at once; callers
    bound that buffer with `pending_bytes` (the outbox budget).
    """
    if PUBLIC_WRITE:
        return _send_public(ws, frame)
    ws.protocol.send_text(frame)
    try:
        ws.send_data()
    except Exception as exc:  # the socket is gone: as ws.send would, drop it
        log.debug("write failed: %s", exc)
        ws.transport.abort()
        return False
    return True


def _send_public(ws: ServerConnection, frame: bytes) -> bool:
    """The public API's way: `ws.send()` in a task. Tasks start in order and
    each writes before its first await, so frames keep their order; a failure
    shows later, as the connection's close."""
    task = asyncio.ensure_future(ws.send(frame, text=True))
    task.add_done_callback(_sent)
    return True


def _sent(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("write failed: %s", task.exception())


def pending_bytes(ws: ServerConnection) -> int:
    """Bytes written to the connection that the peer has not taken yet."""
    return ws.transport.get_write_buffer_size()


def frame_waiting(ws: ServerConnection) -> bool:
    """A frame is already received and queued: `ws.recv()` returns at once."""
    return len(ws.recv_messages.frames) > 0
