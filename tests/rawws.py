"""Raw-socket WebSocket peers for hostile-client tests: no library to be polite for them.

Each can bind a loopback source address (127.0.0.2, 127.0.0.3, ...; Linux
routes all of 127/8 to lo) to play a client from another address.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from pathlib import Path

from tests.procs import ServerProc


def masked_frame(data: bytes, opcode: int = 0x1) -> bytes:
    """One client-to-server frame, masked as RFC 6455 requires."""
    mask, size = os.urandom(4), len(data)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def masked_text_frame(text: str) -> bytes:
    return masked_frame(text.encode())


def request_frame(op: str, request_id: int, **args: object) -> bytes:
    return masked_text_frame(json.dumps({"op": op, "id": request_id, **args}))


def upgraded(server: ServerProc, *, source: str = "127.0.0.1",
             rcvbuf: int | None = 4096, timeout: float = 10) -> socket.socket:
    """A TCP connection from `source` that finished the WebSocket upgrade."""
    sock = socket.socket()
    if rcvbuf is not None:  # a tiny buffer, no autotuning: the server's writes pile up
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect((server.host, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {server.host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, "closed during the upgrade"
        received += chunk
    assert received.startswith(b"HTTP/1.1 101"), received
    return sock


def open_non_reader(server: ServerProc, token: str, *, source: str = "127.0.0.1"
                    ) -> socket.socket:
    """A raw WebSocket with a tiny receive buffer that resumes `token`, then never reads."""
    sock = upgraded(server, source=source)
    sock.sendall(request_frame("resume", 1, token=token))
    received = b""
    while b'"ok":true' not in received:
        received += sock.recv(4096)
    return sock


def rss_kib(server: ServerProc) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def drained_to_the_end(sock: socket.socket) -> bool:
    """Read what is buffered; True once the server has closed or reset the socket."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True
