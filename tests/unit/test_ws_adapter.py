"""conn/ws_adapter.py against the installed websockets: fails loudly if its internals move."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from server.conn import ws_adapter


async def test_adapter_writes_counts_pending_and_sees_queued_frames() -> None:
    seen: dict[str, object] = {}
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        # The internals the adapter relies on exist under these names.
        assert hasattr(ws, "recv_messages") and hasattr(ws.recv_messages, "frames")
        assert callable(ws.protocol.send_text) and callable(ws.send_data)
        assert ws_adapter.is_open(ws)
        first = await ws.recv()
        await asyncio.sleep(0.2)  # the client's second frame arrives meanwhile
        seen["waiting"] = ws_adapter.frame_waiting(ws)
        second = await ws.recv()
        seen["after"] = ws_adapter.frame_waiting(ws)
        seen["wrote"] = ws_adapter.write_text(ws, json.dumps([first, second]).encode())
        seen["pending"] = ws_adapter.pending_bytes(ws)
        await done.wait()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            await client.send("a")
            await client.send("b")
            assert json.loads(await asyncio.wait_for(client.recv(), 5)) == ["a", "b"]
            done.set()
    assert seen == {"waiting": True, "after": False, "wrote": True, "pending": 0}


def raw_client(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that reads nothing after the upgrade."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


async def test_pending_bytes_grow_when_the_peer_does_not_read() -> None:
    pending: list[int] = []
    written, done = asyncio.Event(), asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        for _ in range(256):  # 16 MiB: more than the socket buffers take
            ws_adapter.write_text(ws, b'"' + b"x" * 65536 + b'"')
        pending.append(ws_adapter.pending_bytes(ws))
        written.set()
        await done.wait()
        ws.transport.abort()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sock = await asyncio.to_thread(raw_client, port)
        await asyncio.wait_for(written.wait(), 10)
        done.set()
        sock.close()
    assert pending[0] > 8 * 1024 * 1024  # the kernel took little; the rest waits for the peer


async def test_the_public_send_variant_of_bench_privpaths_keeps_frames_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CHAT_BENCH_PUBLIC_WS_WRITE's variant (await ws.send() in a task per frame),
    measured against the direct write in docs/benchmarks.md, still works."""
    monkeypatch.setattr(ws_adapter, "PUBLIC_WRITE", True)
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        for i in range(100):
            assert ws_adapter.write_text(ws, json.dumps(i).encode())
        await done.wait()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            got = [json.loads(await asyncio.wait_for(client.recv(), 5)) for _ in range(100)]
            done.set()
    assert got == list(range(100))
