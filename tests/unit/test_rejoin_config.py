"""deploy/redis-sentinel/rejoin.py: the config a returning node starts from (no Redis processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from redis.exceptions import NoPermissionError, ResponseError

from deploy.redis_sentinel import rejoin
from deploy.redis_sentinel.render import RenderConfig, render
from server import keys

ROOT = Path(__file__).resolve().parents[2]

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


class FakePrimary:
    """The primary as rejoin.fence_via talks to it (sync redis-py calls)."""

    def __init__(self, *, config: Exception | None = None, replicas: int = 2,
                 acks: int = 2) -> None:
        self.config_error, self.replicas, self.acks = config, replicas, acks
        self.fences: dict[str, str] = {}

    def hget(self, key: str, field: str) -> str | None:
        assert key == keys.FENCES
        return self.fences.get(field)

    def hsetnx(self, key: str, field: str, value: int) -> bool:
        assert key == keys.FENCES
        if field in self.fences:
            return False
        self.fences[field] = str(value)
        return True

    def hdel(self, key: str, field: str) -> int:
        return 1 if self.fences.pop(field, None) is not None else 0

    def config_get(self, name: str) -> dict[str, str]:
        if self.config_error is not None:
            raise self.config_error
        return {name: "100"}

    def config_set(self, name: str, value: str) -> bool:
        if self.config_error is not None:
            raise self.config_error
        return True

    def info(self, section: str) -> dict[str, int]:
        return {"connected_slaves": self.replicas}

    def execute_command(self, *args: object) -> int:
        assert args[0] == "WAIT"
        return self.acks


ME = "10.0.0.3:6379"
PRIMARY = ("10.0.0.1", 6379)


def returning_conf(tmp_path: Path, priority: int = 100) -> Path:
    conf = tmp_path / "redis.conf"
    conf.write_text(f"port 6379\nreplica-priority {priority}\n")
    return conf


def test_returning_node_is_fenced_once_its_record_reached_every_replica(tmp_path: Path) -> None:
    conf, primary = returning_conf(tmp_path), FakePrimary()
    assert "fenced replica" in rejoin.fence_via(primary, conf, PRIMARY, ME)
    assert "replica-priority 0" in conf.read_text().splitlines()
    assert primary.fences == {ME: "100"}


def test_no_fence_where_the_redis_user_may_not_run_config_set(tmp_path: Path) -> None:
    conf = returning_conf(tmp_path)
    primary = FakePrimary(config=NoPermissionError("no permissions to run 'config|set'"))
    assert "not fenced" in rejoin.fence_via(primary, conf, PRIMARY, ME)
    lines = conf.read_text().splitlines()
    assert "replica-priority 100" in lines and "replicaof 10.0.0.1 6379" in lines
    assert primary.fences == {}


def test_a_renamed_config_command_undoes_an_earlier_fence(tmp_path: Path) -> None:
    conf = returning_conf(tmp_path, priority=0)
    primary = FakePrimary(config=ResponseError("unknown command 'CONFIG'"))
    primary.fences[ME] = "60"
    rejoin.fence_via(primary, conf, PRIMARY, ME)
    assert "replica-priority 60" in conf.read_text().splitlines()
    assert primary.fences == {}


def test_no_fence_when_the_records_wait_falls_short(tmp_path: Path) -> None:
    conf, primary = returning_conf(tmp_path), FakePrimary(replicas=2, acks=1)
    assert "reached 1 of 2" in rejoin.fence_via(primary, conf, PRIMARY, ME)
    assert "replica-priority 100" in conf.read_text().splitlines()
    assert primary.fences == {}


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
