"""The local Sentinel set of deploy/redis-sentinel with real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from deploy.redis_sentinel.sentinelset import LocalSet
from tests import procs
from tests.procs import ROOT, free_port, wait_for_port

#: The CLI as the README spells it, run from the repository root (cwd=ROOT).
REDISSET = [sys.executable, "-m", "deploy.redis_sentinel.redisset"]
Address = tuple[str, int]


def client(address: Address, password: str | None = None) -> redis.Redis:
    return redis.Redis(host=address[0], port=address[1], password=password,
                       decode_responses=True, socket_timeout=5)


def replicas_of(local: LocalSet, primary: Address) -> list[Address]:
    return [n.address for n in local.nodes if n.address != primary and n.alive()]


def write_replicated(local: LocalSet, key: str, value: str, replicas: int) -> Address:
    """SET on the primary and WAIT until `replicas` replicas hold it."""
    primary = local.primary_address()
    with client(primary, local.password) as c:
        c.set(key, value)
        assert c.wait(replicas, 5000) >= replicas
    return primary


def wait_value(address: Address, key: str, expected: str, password: str | None = None) -> None:
    deadline = time.monotonic() + 10
    with client(address, password) as c:
        while c.get(key) != expected:
            assert time.monotonic() < deadline, f"{key} never reached {address}"
            time.sleep(0.05)


def dead(pids: dict[str, int]) -> bool:
    return all(not Path(f"/proc/{pid}").exists() or
               Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
               for pid in pids.values())


def test_write_on_primary_reaches_both_replicas(sentinel_set: LocalSet) -> None:
    primary = write_replicated(sentinel_set, "redisset:hello", "world", 2)
    replicas = replicas_of(sentinel_set, primary)
    assert len(replicas) == 2
    for replica in replicas:
        wait_value(replica, "redisset:hello", "world")


def test_status_reports_one_primary_two_replicas_and_sentinel_views(
    sentinel_set: LocalSet,
) -> None:
    status = sentinel_set.status()
    primary = sentinel_set.primary_address()
    assert status["primary"] == f"{primary[0]}:{primary[1]}"
    assert status["agreeing_sentinels"] == 3
    roles = sorted(n["role"] for n in status["nodes"])
    assert roles == ["master", "slave", "slave"]
    for node in status["nodes"]:
        if node["role"] == "slave":
            assert node["link"] == "up" and node["master"] == status["primary"]
            assert node["lag_bytes"] is not None
    for view in status["sentinels"]:
        assert view["primary"] == status["primary"]
        assert len(view["replicas_ok"]) == 2 and view["other_sentinels"] == 2
    text = sentinel_set.status_text()
    assert "primary" in text and status["primary"] in text
    assert sentinel_set.sentinel_arg == ",".join(
        f"{h}:{p}" for h, p in sentinel_set.sentinel_addresses())
    assert len(sentinel_set.pids()) == 6


@pytest.mark.slow
def test_sigkill_primary_is_failed_over_and_old_primary_rejoins_as_replica(
    fresh_sentinel_set: LocalSet,
) -> None:
    local = fresh_sentinel_set
    old = write_replicated(local, "before", "kill", 2)
    old_index = local.node_index(old)
    started = time.monotonic()
    local.kill_node(old_index)
    new = local.wait_for_failover(old, timeout=local.down_after_ms / 1000 + 8)
    assert time.monotonic() - started < local.down_after_ms / 1000 + 8
    assert new != old
    with client(new) as c:
        assert c.get("before") == "kill"
        c.set("after", "failover")

    local.restart_node(old_index)
    with client(old) as c:
        deadline = time.monotonic() + 15
        while True:
            info = c.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") == "up":
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        assert (info["master_host"], int(info["master_port"])) == new
    wait_value(old, "after", "failover")
    local.wait_healthy(15)


@pytest.mark.slow
def test_add_replica_replicates_and_sentinels_list_it(fresh_sentinel_set: LocalSet) -> None:
    local = fresh_sentinel_set
    write_replicated(local, "seed", "1", 2)
    index = local.add_replica()
    added = local.nodes[index].address
    wait_value(added, "seed", "1")
    for view in local.status()["sentinels"]:
        assert f"{added[0]}:{added[1]}" in view["replicas_ok"]
    # The new node is in state.json, so another process manages it too.
    assert len(LocalSet.load(local.root).nodes) == 4


@pytest.mark.slow
def test_kill_all_and_restart_all_keeps_data_and_starts_last_primary_first(
    fresh_sentinel_set: LocalSet,
) -> None:
    local = fresh_sentinel_set
    # Fail over first, so the last known primary is not the one node-0's
    # original config names: restart_all must read it from Sentinel's files.
    first = local.primary_address()
    local.kill_node(local.node_index(first))
    primary = local.wait_for_failover(first, timeout=15)
    local.restart_node(local.node_index(first))
    local.wait_healthy(20)
    for i in range(50):
        write_replicated(local, f"k{i}", f"v{i}", 2)
    time.sleep(1.5)  # appendfsync everysec: let every node fsync its AOF

    local.kill_all()
    assert local.pids() == {}
    assert local.last_known_primary() == primary
    assert local.restart_all() == primary
    assert local.primary_address() == primary
    for node in local.nodes:
        wait_value(node.address, "k49", "v49")
        with client(node.address) as c:
            assert c.mget([f"k{i}" for i in range(50)]) == [f"v{i}" for i in range(50)]


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
