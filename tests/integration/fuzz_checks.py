"""What every fuzz test checks of a reply and of the server afterwards.

A reply carries the request's id (when the frame had a usable one) and is
ok or a documented error code with a detail; the server is still running
with no traceback logged; `python -m server.invariants` finds Redis
consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from websockets.sync.client import ClientConnection

from server.wire import errors
from tests.procs import ROOT, ServerProc

CODES = {cls.code for cls in errors.ALL_CODES} - {"internal"}
PASSWORD = "fuzz password"
NO_THROTTLE = ("--requests-per-second", "1000000", "--request-burst", "1000000",
               "--login-max-failures", "1000000", "--login-max-failures-per-address", "1000000",
               "--login-max-failures-per-user", "1000000")


def expected_id(frame: str) -> Any:
    """The id a reply must carry: the request's, if the frame parses with a usable one.

    Parsed with the standard library, exactly: any JSON integer is an id,
    and NaN/Infinity or lone surrogates make a frame that is not JSON text.
    """
    try:
        data = json.loads(frame, parse_constant=_not_json)
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    request_id = data.get("id")
    ok = isinstance(request_id, str | int) and not isinstance(request_id, bool)
    return request_id if ok else None


def _not_json(name: str) -> Any:
    raise ValueError(name)


def check_reply(reply: dict[str, Any], request_id: Any) -> None:
    assert reply["id"] == request_id, reply
    if reply["ok"] is not True:
        assert reply["ok"] is False and reply["error"] in CODES, reply
        assert isinstance(reply["detail"], str) and reply["detail"], reply


def request(ws: ClientConnection, frame: str | bytes) -> dict[str, Any]:
    ws.send(frame)
    while True:
        reply = json.loads(ws.recv(timeout=10))
        if "event" not in reply:
            return dict(reply)


def run_invariants(redis_url: str) -> None:
    result = subprocess.run([sys.executable, "-m", "server.invariants", "--redis-url", redis_url],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def assert_healthy(server: ServerProc) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.log()
    assert "Traceback" not in server.log()
