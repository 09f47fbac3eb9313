"""deploy/redis-sentinel/rejoin.py: the config a returning node starts from (no Redis processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.redis_sentinel import rejoin
from deploy.redis_sentinel.render import RenderConfig, render
from server import keys

ROOT = Path(__file__).resolve().parents[2]

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_the_deploy_fence_record_is_the_one_the_servers_read() -> None:
    assert rejoin.FENCES_KEY == keys.FENCES


def test_a_returning_master_is_pointed_at_the_primary_with_priority_zero(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\nreplica-priority 50\nappendonly yes\n")
    assert rejoin.configured_priority(conf) == 50
    rejoin.rewrite(conf, ("10.0.0.2", 6379), 0)
    lines = conf.read_text().splitlines()
    assert "replicaof 10.0.0.2 6379" in lines and "replica-priority 0" in lines
    assert "replica-priority 50" not in lines and "appendonly yes" in lines


def test_priority_defaults_to_redis_default_and_none_keeps_it(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\nreplicaof 10.0.0.1 6379\n")
    assert rejoin.configured_priority(conf) == 100
    rejoin.rewrite(conf, ("10.0.0.3", 6379), None)
    assert conf.read_text().splitlines() == ["port 6379", "replicaof 10.0.0.3 6379"]


def test_no_sentinel_majority_leaves_the_config_as_it_is(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\n")
    said = rejoin.fence_before_start(conf, ("127.0.0.1", 6379), [("127.0.0.1", 1)], "chat")
    assert "no Sentinel majority" in said
    assert conf.read_text() == "port 6379\n"


def test_the_redis_unit_runs_the_rejoin_step_before_redis(tmp_path: Path) -> None:
    render(RenderConfig(hosts=HOSTS, sentinel_hosts=HOSTS), tmp_path)
    unit = (tmp_path / "10.0.0.2" / "chat-redis.service").read_text()
    pre = next(line for line in unit.splitlines() if line.startswith("ExecStartPre="))
    assert ("/opt/chat/.venv/bin/python -m deploy.redis_sentinel.rejoin "
            "--conf /var/lib/chat/redis/redis.conf --address 10.0.0.2:6379") in pre
    # `-m` finds the package from the working directory, the app checkout.
    assert "WorkingDirectory=/opt/chat\n" in unit
    assert "--sentinel 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379" in pre
    assert unit.index("ExecStartPre=") < unit.index("ExecStart=")


def test_units_rendered_before_the_package_still_run_the_rejoin_file(tmp_path: Path) -> None:
    # Their ExecStartPre runs deploy/redis-sentinel/rejoin.py as a file, from
    # wherever systemd starts it.
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "redis-sentinel" / "rejoin.py"),
         "--conf", str(conf), "--address", "127.0.0.1:6379", "--sentinel", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "rejoin: no Sentinel majority names a primary: config left as it is\n"
