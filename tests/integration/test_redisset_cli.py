"""`python -m deploy.redis_sentinel.redisset` (and the file itself) from other
processes: password mode end to end, status, a busy port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.integration.redisset_checks import (
    REDISSET,
    client,
    dead,
    replicas_of,
    wait_value,
    write_replicated,
)
from tests.procs import ROOT


@pytest.mark.slow
def test_password_mode_via_cli_from_other_processes(tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("s3cret-pass\n")
    root = tmp_path / "set"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*REDISSET, *args], capture_output=True, cwd=ROOT,
                              text=True, timeout=90, check=False)

    started = cli("start", "--dir", str(root), "--password-file", str(pw_file))
    local: LocalSet | None = None
    try:
        assert started.returncode == 0, started.stderr
        assert "s3cret" not in (root / "state.json").read_text()
        local = LocalSet.load(root)
        primary = local.primary_address()
        with client(primary) as c, pytest.raises(redis.AuthenticationError):
            c.ping()
        write_replicated(local, "secret", "value", 2)
        for replica in replicas_of(local, primary):
            wait_value(replica, "secret", "value", password="s3cret-pass")
        status = cli("status", "--dir", str(root), "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["primary"] == f"{primary[0]}:{primary[1]}"
        pids = local.pids()
        assert len(pids) == 6
    finally:
        stopped = cli("stop", "--dir", str(root))
        if local is not None:
            local.stop()  # in case the CLI failed: never leave processes behind
    assert stopped.returncode == 0, stopped.stderr
    assert dead(pids)
    assert LocalSet.load(root).pids() == {}


def test_the_cli_also_runs_as_a_file_from_any_directory(tmp_path: Path) -> None:
    # The pre-package spelling, from outside the repository: imports still resolve.
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "redis-sentinel" / "redisset.py"),
         "status", "--dir", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr == f"redisset status: no set under {tmp_path / 'none'} " \
        "(no state.json); start one first\n"


def bind_low_port(sock: socket.socket) -> int:
    """Bind a port below 45536, so base port + 20000 (Sentinels) still fits."""
    for port in range(30000 + os.getpid() % 10000, 45000):
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise AssertionError("no free port below 45000")


def test_cli_start_on_a_busy_port_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        port = bind_low_port(busy)
        busy.listen()
        result = subprocess.run(
            [*REDISSET, "start", "--dir", str(tmp_path / "s"), "--base-port", str(port)],
            capture_output=True, text=True, timeout=30, check=False, cwd=ROOT,
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"port {port} " in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr
