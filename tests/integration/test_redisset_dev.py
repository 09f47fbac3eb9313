"""`redisset dev`: the set and chat servers until SIGTERM, a killed server restarted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from deploy.redis_sentinel.sentinelset import LocalSet
from tests import procs
from tests.integration.redisset_checks import (
    REDISSET,
    dead,
)
from tests.procs import free_port, wait_for_port


def free_base_port() -> int:
    """A base port whose 3 node ports and 3 Sentinel ports (+20000) are free."""
    for base in range(30000 + os.getpid() % 10000, 45000, 7):
        ports = [base + i for i in range(3)] + [base + 20000 + i for i in range(3)]
        if all(port_free(p) for p in ports):
            return base
    raise AssertionError("no free base port")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def dev_running(root: Path, *extra: str) -> contextlib.AbstractContextManager[
        tuple[subprocess.Popen[str], list[str]]]:
    """`redisset dev` started and read up to its ready line; stopped at the end."""
    def cleanup() -> None:
        if (root / "state.json").exists():
            LocalSet.load(root).stop()

    return procs.dev_running(
        [*REDISSET, "dev", "--dir", str(root), "--redis-port", str(free_base_port()), *extra],
        cleanup)


def test_dev_runs_the_set_until_sigterm_then_stops_everything(tmp_path: Path) -> None:
    root = tmp_path / "run"
    with dev_running(root, "--servers", "0") as (proc, lines):
        assert any("chat is up" in line for line in lines), "".join(lines)
        pids = LocalSet.load(root).pids()
        assert len(pids) == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert dead(pids)


@pytest.mark.slow
def test_dev_restarts_a_chat_server_that_was_killed(tmp_path: Path) -> None:
    server_port = free_port()
    with dev_running(tmp_path / "run", "--servers", "1", "--port", str(server_port)) as (
        proc, lines,
    ):
        assert proc.stdout is not None
        assert any(f"open http://127.0.0.1:{server_port}/ in a browser" in line
                   for line in lines), "".join(lines)
        server = subprocess.run(
            ["pgrep", "-f", "--", f"-m server --host 127.0.0.1 --port {server_port} "],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        assert len(server) == 1, server
        time.sleep(10)  # past the crash-loop guard
        os.kill(int(server[0]), signal.SIGKILL)
        for line in proc.stdout:
            lines.append(line)
            if "restarting it" in line:
                break
        assert any(f"port {server_port} exited" in line for line in lines), "".join(lines)
        wait_for_port("127.0.0.1", server_port, timeout=30)
        assert proc.poll() is None, "dev must keep running after restarting the server"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
