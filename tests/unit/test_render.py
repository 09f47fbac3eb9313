"""Multi-host config rendering of deploy/redis-sentinel (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.redis_sentinel.nodes import SetError
from deploy.redis_sentinel.redisset import main
from deploy.redis_sentinel.render import RenderConfig, quorum_for, render

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
FIVE = [*HOSTS, "10.0.0.4", "10.0.0.5"]


def conf_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_quorum_is_a_majority_of_sentinels() -> None:
    assert quorum_for(3) == 2
    assert quorum_for(5) == 3


def test_three_hosts_get_redis_sentinel_and_units_with_quorum_2(tmp_path: Path) -> None:
    render(RenderConfig(hosts=HOSTS, sentinel_hosts=HOSTS), tmp_path)
    for host in HOSTS:
        names = sorted(p.name for p in (tmp_path / host).iterdir())
        assert names == ["chat-redis.service", "chat-sentinel.service", "chat-server@.service",
                         "redis.conf", "sentinel.conf"]
        sentinel = conf_lines(tmp_path / host / "sentinel.conf")
        assert "sentinel monitor chat 10.0.0.1 6379 2" in sentinel
        assert f"sentinel announce-ip {host}" in sentinel
        redis_conf = conf_lines(tmp_path / host / "redis.conf")
        assert {"appendonly yes", "appendfsync everysec", "aof-use-rdb-preamble yes"} <= set(
            redis_conf)
        assert not any(line.startswith("min-replicas-to-write") for line in redis_conf)
        assert not any(line.startswith("requirepass") for line in redis_conf)
        is_replica = "replicaof 10.0.0.1 6379" in redis_conf
        assert is_replica == (host != "10.0.0.1")
        unit = (tmp_path / host / "chat-server@.service").read_text()
        assert "--sentinel 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379" in unit
        assert "--sentinel-master chat" in unit and "--port %i" in unit


def test_five_sentinels_use_quorum_3_and_sentinel_only_hosts(tmp_path: Path) -> None:
    render(RenderConfig(hosts=HOSTS, sentinel_hosts=FIVE), tmp_path)
    for host in FIVE:
        assert "sentinel monitor chat 10.0.0.1 6379 3" in conf_lines(
            tmp_path / host / "sentinel.conf")
    assert sorted(p.name for p in (tmp_path / "10.0.0.5").iterdir()) == [
        "chat-sentinel.service", "sentinel.conf"]


def test_password_goes_to_configs_and_the_server_reads_it_from_a_file(tmp_path: Path) -> None:
    render(RenderConfig(hosts=HOSTS, sentinel_hosts=HOSTS, password="pw-123456"), tmp_path)
    host = tmp_path / "10.0.0.2"
    assert {'requirepass "pw-123456"', 'masterauth "pw-123456"'} <= set(
        conf_lines(host / "redis.conf"))
    assert 'sentinel auth-pass chat "pw-123456"' in conf_lines(host / "sentinel.conf")
    unit = (host / "chat-server@.service").read_text()
    assert "pw-123456" not in unit and "--redis-password-file /etc/chat/redis-password" in unit
    assert (host / "redis.conf").stat().st_mode & 0o077 == 0


def test_dns_names_turn_on_sentinel_hostname_support(tmp_path: Path) -> None:
    names = ["r1.example", "r2.example", "r3.example"]
    render(RenderConfig(hosts=names, sentinel_hosts=names), tmp_path)
    assert "sentinel resolve-hostnames yes" in conf_lines(tmp_path / "r1.example/sentinel.conf")


def test_fewer_than_three_sentinels_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SetError):
        render(RenderConfig(hosts=HOSTS, sentinel_hosts=HOSTS[:2]), tmp_path)


def test_cli_renders_five_sentinels_with_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    out = tmp_path / "out"
    assert main(["render", "--hosts", ",".join(HOSTS), "--sentinels", "5",
                 "--sentinel-hosts", ",".join(FIVE), "--out", str(out),
                 "--password-file", str(pw)]) == 0
    assert "quorum 3" in capsys.readouterr().out
    assert 'sentinel auth-pass chat "from-a-file"' in conf_lines(out / "10.0.0.4/sentinel.conf")


def test_cli_sentinel_count_without_enough_hosts_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--hosts", ",".join(HOSTS), "--sentinels", "5",
                 "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sentinels 5 needs 5 hosts" in err


def test_cli_rejoin_runs_the_rejoin_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\n")
    assert main(["rejoin", "--conf", str(conf), "--address", "127.0.0.1:6379",
                 "--sentinel", "127.0.0.1:1"]) == 0
    assert "rejoin: no Sentinel majority names a primary" in capsys.readouterr().out
    assert conf.read_text() == "port 6379\n"
