"""`python -m server check` against a real Redis and a real Sentinel set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.redis_sentinel.sentinelset import LocalSet
from server import keys
from tests.procs import ROOT, RedisNode, free_port


def check(*args: str) -> tuple[int, dict[str, str]]:
    """Exit code and {check name: level + detail} of one run."""
    done = subprocess.run(
        [sys.executable, "-m", "server", "check", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr + done.stdout
    lines: dict[str, str] = {}
    for line in done.stdout.splitlines():
        level, _, rest = line.partition(" ")
        name, sep, detail = rest.strip().partition(": ")
        if level in ("OK", "WARN", "FAIL") and sep:
            lines[name] = f"{level} {detail}"
    return done.returncode, lines


def test_check_passes_on_a_single_redis_and_warns_there_is_no_failover(redis_url: str) -> None:
    code, lines = check("--redis-url", redis_url)
    assert code == 0, lines
    assert lines["primary"].startswith("OK") and "accepts writes" in lines["primary"]
    assert lines["replicas"].startswith("WARN")
    aof = [v for k, v in lines.items() if k.startswith("aof primary")]
    assert aof and aof[0].startswith("OK")
    assert any(k.startswith("appendfsync") and v == "OK everysec" for k, v in lines.items())
    assert lines["dedupe window"] == "OK 3600 s; records expire per field (hsetex)"
    assert lines["inbox quotas"].startswith("OK 10000 messages, 16777216 body bytes")


def test_check_warns_when_one_sender_may_fill_a_whole_inbox(redis_url: str) -> None:
    code, lines = check("--redis-url", redis_url, "--max-pending-per-sender", "10000")
    assert code == 0, lines
    assert lines["inbox quotas"].startswith("WARN") and "one sender" in lines["inbox quotas"]


def test_check_fails_in_plain_words_when_redis_is_unreachable() -> None:
    code, lines = check("--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert code == 1
    assert lines["primary"].startswith("FAIL") and "onnect" in lines["primary"]


def test_check_names_auth_failure_aof_off_and_config_it_cannot_read(tmp_path: Path) -> None:
    node = RedisNode(datadir=tmp_path / "redis", port=free_port(), password="s3cret-pass")
    node.write_config(extra='appendonly no\nrename-command CONFIG ""\n')
    node.start()
    try:
        url = f"redis://127.0.0.1:{node.port}/0"
        code, lines = check("--redis-url", url)
        assert code == 1 and "requires a password" in lines["primary"], lines
        wrong = tmp_path / "wrong"
        wrong.write_text("not-it\n")
        code, lines = check("--redis-url", url, "--redis-password-file", str(wrong))
        assert code == 1 and "wrong password" in lines["primary"], lines
        right = tmp_path / "right"
        right.write_text("s3cret-pass\n")
        code, lines = check("--redis-url", url, "--redis-password-file", str(right))
        assert code == 1, lines
        assert lines["primary"].startswith("OK")
        aof = next(v for k, v in lines.items() if k.startswith("aof primary"))
        assert aof.startswith("FAIL") and "appendonly is off" in aof
        fsync = next(v for k, v in lines.items() if k.startswith("appendfsync primary"))
        assert fsync.startswith("WARN") and "CONFIG" in fsync
    finally:
        node.stop()


def test_check_passes_on_a_healthy_sentinel_set(sentinel_set: LocalSet) -> None:
    code, lines = check("--sentinel", sentinel_set.sentinel_arg)
    assert code == 0, lines
    assert lines["sentinel majority"] == "OK 3 of 3 reachable"
    assert lines["sentinel quorum"].startswith("OK")
    host, port = sentinel_set.primary_address()
    assert f"{host}:{port}" in lines["sentinel agreement"]
    assert lines["replicas"].startswith("OK 2 online")
    assert len([k for k in lines if k.startswith("aof ")]) == 3


def test_check_fails_on_a_wrong_master_name_and_an_unreachable_sentinel(
    sentinel_set: LocalSet,
) -> None:
    code, lines = check("--sentinel", sentinel_set.sentinel_arg, "--sentinel-master", "nope")
    assert code == 1
    per_sentinel = [v for k, v in lines.items() if k.startswith("sentinel 127.")]
    assert len(per_sentinel) == 3 and all("does not monitor" in v for v in per_sentinel)
    dead = f"127.0.0.1:{free_port()}"
    code, lines = check("--sentinel", f"{sentinel_set.sentinel_arg},{dead}")
    assert code == 1
    assert lines[f"sentinel {dead}"].startswith("FAIL")
    assert lines["sentinel majority"] == "OK 3 of 4 reachable"


def test_check_fails_on_a_fence_record_nobody_can_lift(tmp_path: Path) -> None:
    node = RedisNode(datadir=tmp_path / "redis", port=free_port())
    node.write_config(extra='rename-command CONFIG ""\n')
    node.start()
    try:
        with node.client() as client:
            client.hset(keys.FENCES, f"127.0.0.1:{node.port}", 100)
        code, lines = check("--redis-url", f"redis://127.0.0.1:{node.port}/0")
        assert code == 1, lines
        fence = lines[f"fence 127.0.0.1:{node.port}"]
        assert fence.startswith("FAIL") and "cannot be lifted" in fence
    finally:
        node.stop()


def test_check_passes_a_fence_record_the_servers_can_lift(
    redis_node: RedisNode, redis_url: str,
) -> None:
    with redis_node.client() as client:
        client.hset(keys.FENCES, f"127.0.0.1:{redis_node.port}", 100)
    code, lines = check("--redis-url", redis_url)
    assert code == 0, lines
    assert lines[f"fence 127.0.0.1:{redis_node.port}"].startswith("OK")
