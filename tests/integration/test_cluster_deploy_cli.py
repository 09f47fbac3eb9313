"""clusterctl, the CLI of deploy/redis-cluster, run as the README spells it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.redis_cluster.clusternode import ClusterNode, free_cluster_port
from deploy.redis_cluster.devrun import server_has_cluster_flag
from deploy.redis_cluster.localcluster import LocalCluster
from deploy.redis_sentinel.procutil import port_in_use
from tests import procs
from tests.procs import ROOT, free_port

CLUSTERCTL = [sys.executable, "-m", "deploy.redis_cluster.clusterctl"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLUSTERCTL, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=240, check=False)


def running(pids: dict[str, int]) -> list[int]:
    return [pid for pid in pids.values() if Path(f"/proc/{pid}").exists()
            and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Path]:
    """A 3-shard cluster without replicas started by `clusterctl start`."""
    root = tmp_path / "cluster"
    result = run("start", "--dir", str(root), "--replicas", "0")
    assert result.returncode == 0, result.stderr
    try:
        yield root
    finally:
        LocalCluster.load(root).stop_all()


def test_start_prints_status_and_the_server_flag_and_stop_ends_every_node(
        tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    result = run("start", "--dir", str(root), "--replicas", "0")
    try:
        assert result.returncode == 0, result.stderr
        assert ": ok" in result.stdout
        assert "--cluster-nodes 127.0.0.1:" in result.stdout
        pids = LocalCluster.load(root).pids()
        assert len(pids) == 3
    finally:
        stopped = run("stop", "--dir", str(root))
    assert stopped.returncode == 0, stopped.stderr
    assert running(pids) == []


def test_status_shows_each_shard_its_slots_epoch_and_keys(started: Path) -> None:
    result = run("status", "--dir", str(started), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["ok"] is True
    assert [s["slots"] for s in status["shards"]] == ["0-5460", "5461-10921", "10922-16383"]
    assert all(s["config_epoch"] for s in status["shards"])
    assert all(n["keys"] == 0 for s in status["shards"] for n in s["nodes"])


def test_status_exits_non_zero_when_a_node_is_down(started: Path) -> None:
    assert run("kill", "--dir", str(started), "1").returncode == 0
    result = run("status", "--dir", str(started))
    assert result.returncode == 1
    assert "NOT OK" in result.stdout
    assert "DOWN" in result.stdout


def test_start_on_a_stopped_cluster_starts_it_again_with_its_data(started: Path) -> None:
    cluster = LocalCluster.load(started)
    with cluster.node(cluster.shard_of("{kept}").primary or ("", 0)).client() as client:
        client.set("{kept}", "yes")
    assert run("stop", "--dir", str(started)).returncode == 0
    again = run("start", "--dir", str(started))
    assert again.returncode == 0, again.stderr
    assert "restarting the existing cluster" in again.stdout
    cluster = LocalCluster.load(started)
    with cluster.node(cluster.shard_of("{kept}").primary or ("", 0)).client() as client:
        assert client.get("{kept}") == "yes"
    assert run("restart", "--dir", str(started)).returncode == 0
    assert run("status", "--dir", str(started)).returncode == 0


def test_unknown_folder_fails_with_one_line(tmp_path: Path) -> None:
    result = run("status", "--dir", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert "no cluster under" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_multi_host_commands_create_replace_a_dead_node_and_fail_over(tmp_path: Path) -> None:
    """create/forget/add-replica/failover/status --nodes against running, unformed
    nodes: the multi-host path, with local processes standing in for hosts."""
    nodes: list[ClusterNode] = []
    for i in range(5):
        port = free_cluster_port("127.0.0.1", {n.port for n in nodes})
        nodes.append(ClusterNode(datadir=tmp_path / f"n{i}", port=port))
    try:
        for node in nodes:
            node.start()
        seeds = ",".join(f"{n.host}:{n.port}" for n in nodes[:4])
        created = run("create", "--nodes", seeds, "--replicas", "1")
        assert created.returncode == 0, created.stderr
        status = json.loads(run("status", "--nodes", seeds, "--json").stdout)
        assert [len(s["nodes"]) for s in status["shards"]] == [2, 2]
        dead = status["shards"][0]["nodes"][1]
        nodes[1].kill()  # shard 0's replica
        assert run("forget", "--nodes", seeds, dead["id"]).returncode == 0
        replaced = run("add-replica", "--nodes", seeds, "--new", f"127.0.0.1:{nodes[4].port}",
                       "--of", f"127.0.0.1:{nodes[0].port}")
        assert replaced.returncode == 0, replaced.stderr
        after = run("status", "--nodes", f"127.0.0.1:{nodes[0].port}", "--json")
        assert after.returncode == 0, after.stdout
        shard0 = json.loads(after.stdout)["shards"][0]
        assert [n["address"] for n in shard0["nodes"]] == [
            f"127.0.0.1:{nodes[0].port}", f"127.0.0.1:{nodes[4].port}"]
        promoted = run("failover", "--nodes", seeds, "--to", f"127.0.0.1:{nodes[4].port}")
        assert promoted.returncode == 0, promoted.stderr
        shard0 = json.loads(run("status", "--nodes", seeds, "--json").stdout)["shards"][0]
        assert shard0["primary"] == f"127.0.0.1:{nodes[4].port}"
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.slow
def test_multi_host_add_shard_joins_running_nodes_and_moves_slots(tmp_path: Path) -> None:
    nodes: list[ClusterNode] = []
    for i in range(5):
        port = free_cluster_port("127.0.0.1", {n.port for n in nodes})
        nodes.append(ClusterNode(datadir=tmp_path / f"n{i}", port=port, password="pw"))
    (tmp_path / "pw").write_text("pw\n")
    auth = ("--password-file", str(tmp_path / "pw"))
    try:
        for node in nodes:
            node.start()
        seeds = ",".join(f"{n.host}:{n.port}" for n in nodes[:3])
        assert run("create", "--nodes", seeds, "--replicas", "0", *auth).returncode == 0
        new = ",".join(f"{n.host}:{n.port}" for n in nodes[3:])
        added = run("add-shard", "--nodes", seeds, "--new-nodes", new, "--slots", "30",
                    "--dir", str(tmp_path), *auth)
        assert added.returncode == 0, added.stderr
        assert "moved 30/30 slots (100%)" in added.stdout
        status = json.loads(run("status", "--nodes", seeds, "--json", *auth).stdout)
        assert status["ok"] is True
        new_shard = [s for s in status["shards"] if s["primary"] == f"127.0.0.1:{nodes[3].port}"]
        assert [s["slot_count"] for s in new_shard] == [30]
        assert len(new_shard[0]["nodes"]) == 2
    finally:
        for node in nodes:
            node.stop()


def free_base() -> int:
    """A base port whose 9 node ports and their bus ports (+10000) are free."""
    for base in range(20000 + os.getpid() % 20000, 55000, 11):
        if not any(port_in_use("127.0.0.1", p + off) for p in range(base, base + 9)
                   for off in (0, 10000)):
            return base
    raise AssertionError("no free base port")


def dev_running(root: Path, *extra: str) -> contextlib.AbstractContextManager[
        tuple[subprocess.Popen[str], list[str]]]:
    """`clusterctl dev` started and read up to its ready line; stopped at the end."""
    def cleanup() -> None:
        if (root / "cluster.json").exists():
            LocalCluster.load(root).stop_all()

    return procs.dev_running(
        [*CLUSTERCTL, "dev", "--dir", str(root), "--redis-port", str(free_base()), *extra],
        cleanup)


@pytest.mark.slow
def test_dev_runs_the_cluster_until_sigterm_then_stops_everything(tmp_path: Path) -> None:
    root = tmp_path / "run"
    with dev_running(root, "--servers", "0") as (proc, lines):
        assert any("chat is up" in line for line in lines), "".join(lines)
        pids = LocalCluster.load(root).pids()
        assert len(pids) == 9
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert running(pids) == []


@pytest.mark.slow
@pytest.mark.skipif(not server_has_cluster_flag(),
                    reason="the chat server has no --cluster-nodes yet (branch cluster-server)")
def test_dev_starts_two_chat_servers_on_the_cluster(tmp_path: Path) -> None:
    # Two servers listen on first and first + 1: both must be free.
    first = next(p for p in iter(free_port, 0) if p < 65535 and not port_in_use("127.0.0.1", p + 1))
    with dev_running(tmp_path / "run", "--port", str(first)) as (proc, lines):
        assert proc.stdout is not None
        text = "".join(lines) + (proc.stdout.read() if proc.poll() is not None else "")
        assert "chat is up" in text, text
        assert "--cluster-nodes 127.0.0.1:" in text
        assert f"ws://127.0.0.1:{first}/ws" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
