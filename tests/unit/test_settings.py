"""Configuration: flags beat CHAT_* variables beat defaults; bad setups exit with one line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from server.__main__ import env_name, load_settings
from server.settings import Settings, fields

ROOT = Path(__file__).resolve().parents[2]
URL = ["--redis-url", "redis://127.0.0.1:6379/0"]


def fails(argv: Sequence[str], environ: Mapping[str, str],
          capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a configuration that load_settings refuses."""
    with pytest.raises(SystemExit) as info:
        load_settings(argv, environ)
    assert info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("python -m server: error: ")
    assert "Traceback" not in err
    return last.removeprefix("python -m server: error: ")


def test_defaults_apply_when_neither_flag_nor_variable_is_given() -> None:
    settings = load_settings(URL, {})
    assert settings == Settings(redis_url="redis://127.0.0.1:6379/0")
    assert (settings.host, settings.port, settings.ack_timeout_ms) == ("127.0.0.1", 8765, 1000)
    assert (settings.durability, settings.sentinel_master) == ("replicas", "chat")


def test_environment_variable_beats_the_default() -> None:
    settings = load_settings([], {"CHAT_REDIS_URL": "redis://h:1/0", "CHAT_PORT": "9000",
                                  "CHAT_REQUESTS_PER_SECOND": "2.5", "CHAT_DURABILITY": "fsync"})
    assert settings.redis_url == "redis://h:1/0"
    assert settings.port == 9000
    assert settings.requests_per_second == 2.5
    assert settings.durability == "fsync"


def test_flag_beats_the_environment_variable() -> None:
    settings = load_settings(
        ["--port", "9001", "--redis-url", "redis://flag/0", "--ack-timeout-ms", "250"],
        {"CHAT_PORT": "9000", "CHAT_REDIS_URL": "redis://env/0", "CHAT_ACK_TIMEOUT_MS": "99"},
    )
    assert (settings.port, settings.redis_url, settings.ack_timeout_ms) == (
        9001, "redis://flag/0", 250)


def test_empty_environment_variable_is_ignored() -> None:
    assert load_settings(URL, {"CHAT_PORT": "", "CHAT_HOST": ""}).port == 8765


def test_unrelated_environment_variables_are_ignored() -> None:
    assert load_settings(URL, {"PORT": "1", "CHAT_NOT_A_SETTING": "x"}).port == 8765


def sample_value(f: dataclasses.Field[Any]) -> Any:
    """A valid value for a setting that differs from its default."""
    choices = f.metadata.get("choices")
    if choices:
        return next(c for c in choices if c != f.default)
    if f.name in ("sentinel", "cluster_nodes"):
        return "h:1"
    if f.name in ("public_urls", "allowed_origins"):
        return "https://chat.example.org,http://127.0.0.1:8766"
    if f.name in ("trusted_proxies", "admin_allow"):
        return "10.0.0.0/8,2001:db8::/32"
    if isinstance(f.default, bool):
        raise AssertionError(f"no sample for boolean {f.name}")
    if isinstance(f.default, int):
        return f.default + 7
    if isinstance(f.default, float):
        return f.default + 1.5
    return "other-value"


@pytest.mark.parametrize("f", fields(), ids=lambda f: f.name)
@pytest.mark.parametrize("source", ["flag", "env"])
def test_every_setting_reads_its_flag_and_its_chat_variable(
        f: dataclasses.Field[Any], source: str) -> None:
    value = sample_value(f)
    # TLS files go together; a setting under test overrides its own.
    environ = {"CHAT_TLS_CERT": "c.pem", "CHAT_TLS_KEY": "k.pem"}
    argv: list[str] = [] if f.name in ("redis_url", "sentinel", "cluster_nodes") else list(URL)
    if source == "flag":
        argv += ["--" + f.name.replace("_", "-"), str(value)]
    else:
        environ[env_name(f.name)] = str(value)
    assert getattr(load_settings(argv, environ), f.name) == value


def test_env_name_is_chat_and_the_upper_case_field_name() -> None:
    assert env_name("ack_timeout_ms") == "CHAT_ACK_TIMEOUT_MS"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings(URL, {}).port = 1  # type: ignore[misc]


def test_sentinel_addresses_are_parsed_into_host_port_pairs() -> None:
    settings = load_settings(["--sentinel", "10.0.0.1:26379, 10.0.0.2:26380,h3:1"], {})
    assert settings.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 1)]
    assert settings.sentinel_master == "chat"


def test_sentinel_master_can_be_renamed() -> None:
    settings = load_settings(["--sentinel", "h:1", "--sentinel-master", "mymaster"], {})
    assert settings.sentinel_master == "mymaster"


def test_missing_redis_config_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([], {}, capsys) == \
        "give exactly one of --redis-url, --sentinel and --cluster-nodes"


def test_both_redis_url_and_sentinel_exit_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails([*URL, "--sentinel", "h:1"], {}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --redis-url and --sentinel)")


def test_redis_url_from_env_and_sentinel_flag_is_also_both(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--sentinel", "h:1"], {"CHAT_REDIS_URL": "redis://x/0"}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --redis-url and --sentinel)")


def test_cluster_nodes_and_sentinel_exit_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--cluster-nodes", "h:1", "--sentinel", "h:2"], {}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --sentinel and --cluster-nodes)")


def test_cluster_nodes_from_env_are_seed_addresses() -> None:
    settings = load_settings([], {"CHAT_CLUSTER_NODES": "h1:7000, h2:7001"})
    assert settings.cluster_seeds == [("h1", 7000), ("h2", 7001)]


def test_a_cluster_node_that_is_not_host_port_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails(["--cluster-nodes", "h1:7000,h2"], {}, capsys) == \
        "--cluster-nodes entry 'h2' is not host:port"


@pytest.mark.parametrize("entry", ["h1", "h1:x", ":26379", "h1:", "h1:1,,h2:2", "h1:1,h2"])
def test_bad_sentinel_entry_exits_with_a_clear_error(
        entry: str, capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--sentinel", entry], {}, capsys)
    assert msg.startswith("--sentinel entry ")
    assert msg.endswith(" is not host:port")


def test_cert_without_key_exits_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, "--tls-cert", "c.pem"], {}, capsys) == (
        "--tls-cert and --tls-key go together")


def test_key_without_cert_exits_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL], {"CHAT_TLS_KEY": "k.pem"}, capsys) == (
        "--tls-cert and --tls-key go together")


def test_cert_and_key_together_are_accepted() -> None:
    settings = load_settings([*URL, "--tls-cert", "c.pem", "--tls-key", "k.pem"], {})
    assert (settings.tls_cert, settings.tls_key) == ("c.pem", "k.pem")


@pytest.mark.parametrize("port", ["65536", "-1"])
def test_port_out_of_range_exits_with_a_clear_error(
        port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, f"--port={port}"], {}, capsys) == f"--port {port} is not a port number"


def test_port_zero_is_accepted() -> None:
    assert load_settings([*URL, "--port", "0"], {}).port == 0


@pytest.mark.parametrize("name", ["ack_timeout_ms", "max_frame_bytes", "max_body_chars",
                                  "max_list_limit", "max_inbox", "token_ttl_s",
                                  "login_window_s", "max_outbox_frames",
                                  "max_pending_per_sender"])
def test_limit_below_one_exits_with_a_clear_error(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--" + name.replace("_", "-")
    assert fails([*URL, f"{flag}=0"], {}, capsys) == f"{flag} must be at least 1"


@pytest.mark.parametrize("name", ["topology_interval_ms", "sweep_interval_ms", "request_burst",
                                  "max_connections_per_ip", "argon2_time_cost",
                                  "argon2_parallelism"])
def test_interval_burst_or_cap_below_one_exits_with_a_clear_error(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 0 ms intervals spin the topology poll or the sweep in a busy loop; a
    # burst or connection cap of 0 refuses every request: bad configuration.
    flag = "--" + name.replace("_", "-")
    assert fails([*URL, f"{flag}=0"], {}, capsys) == f"{flag} must be at least 1"


@pytest.mark.parametrize("value", ["1", "604801"])
def test_dedupe_window_outside_two_seconds_to_a_week_exits_with_a_clear_error(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, f"--dedupe-window-s={value}"], {}, capsys) == (
        "--dedupe-window-s must be 2 to 604800")


def test_inbox_bytes_that_cannot_hold_one_longest_body_exit_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    error = fails([*URL, "--max-inbox-bytes=16383"], {}, capsys)
    assert error.startswith("--max-inbox-bytes must hold one message of --max-body-chars")
    assert load_settings([*URL, "--max-inbox-bytes=16384"], {}).max_inbox_bytes == 16384


def test_quota_and_window_defaults_are_the_protocols() -> None:
    s = load_settings(URL, {})
    assert (s.dedupe_window_s, s.max_pending_per_sender, s.max_inbox_bytes) == (
        3600, 1000, 16 * 1024 * 1024)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_request_rate_of_zero_or_less_exits_with_a_clear_error(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, f"--requests-per-second={value}"], {}, capsys) == (
        "--requests-per-second must be more than 0")


def test_non_integer_flag_exits_with_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails([*URL, "--port", "eighty"], {}, capsys)
    assert "--port" in msg and "eighty" in msg


def test_non_integer_variable_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails(URL, {"CHAT_PORT": "eighty"}, capsys) == "CHAT_PORT='eighty' is not a valid int"


def test_non_number_float_variable_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(URL, {"CHAT_REQUESTS_PER_SECOND": "fast"}, capsys)
    assert msg.startswith("CHAT_REQUESTS_PER_SECOND='fast' is not a valid ")


def test_variable_outside_its_choices_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails(URL, {"CHAT_DURABILITY": "maybe"}, capsys) == (
        "CHAT_DURABILITY must be one of replicas, fsync")


def test_flag_outside_its_choices_exits_with_argparse_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails([*URL, "--log-format", "xml"], {}, capsys)
    assert "--log-format" in msg and "invalid choice" in msg


def test_unknown_flag_exits_with_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--no-such-flag" in fails([*URL, "--no-such-flag"], {}, capsys)


def run_server_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(COLUMNS="200", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_help_lists_every_flag_with_its_environment_variable() -> None:
    proc = run_server_cli("--help")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for f in fields():
        flag = "--" + f.name.replace("_", "-")
        hits = [i for i, line in enumerate(lines) if line.strip().startswith(flag + " ")]
        assert hits, f"{flag} missing from --help"
        # argparse may wrap the help text; the variable is on the flag's entry.
        entry = " ".join(lines[hits[0]:hits[0] + 3])
        assert f"[{env_name(f.name)};" in entry, flag


def test_bad_configuration_exits_2_with_a_one_line_reason_and_no_traceback() -> None:
    proc = run_server_cli("--port", "8765")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == (
        "python -m server: error: give exactly one of --redis-url, --sentinel and "
        "--cluster-nodes")
    assert "Traceback" not in proc.stderr


def test_public_urls_and_allowed_origins_must_be_http_urls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings([*URL, "--public-urls", "http://a:1,https://b"], {
        "CHAT_ALLOWED_ORIGINS": "https://chat.example.org"})
    assert settings.public_urls == "http://a:1,https://b"
    assert settings.allowed_origins == "https://chat.example.org"
    assert "--public-urls" in fails([*URL, "--public-urls", "a.example:8765"], {}, capsys)
    assert "--allowed-origins" in fails([*URL, "--allowed-origins", "ws://x"], {}, capsys)


@pytest.mark.parametrize("flag", ["--trusted-proxies", "--admin-allow"])
def test_a_network_list_with_a_bad_entry_is_refused_naming_it(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        load_settings([*URL, flag, "10.0.0.0/8,nginx.local"], {})
    assert f"{flag}: 'nginx.local' is not" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--login-max-failures-per-user", "--max-sessions-per-user"])
def test_session_limits_below_one_are_refused(flag: str) -> None:
    with pytest.raises(SystemExit):
        load_settings([*URL, flag, "0"], {})


def test_exhaustion_bounds_have_the_documented_defaults() -> None:
    s = load_settings(URL, {})
    assert (s.max_reply_bytes, s.write_timeout_s, s.open_timeout_s) == (1048576, 30.0, 10.0)
    assert (s.ping_interval_s, s.ping_timeout_s) == (20.0, 20.0)
    assert (s.max_hash_queue, s.max_hash_per_address) == (64, 4)
    assert s.hash_threads == (os.cpu_count() or 1)
    assert load_settings([*URL, "--hash-workers", "3"], {}).hash_threads == 3


@pytest.mark.parametrize("name", ["write_timeout_s", "open_timeout_s", "ping_interval_s",
                                  "ping_timeout_s"])
@pytest.mark.parametrize("value", ["0", "-1", "86401"])
def test_timeouts_outside_zero_to_a_day_exit_with_a_clear_error(
        name: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--" + name.replace("_", "-")
    assert fails([*URL, f"{flag}={value}"], {}, capsys) == (
        f"{flag} must be more than 0 and at most 86400")


def test_reply_bound_below_one_longest_message_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, "--max-reply-bytes=1000"], {}, capsys).startswith(
        "--max-reply-bytes must be at least 65536")


@pytest.mark.parametrize("argv", [["--max-hash-queue=0"], ["--max-hash-per-address=0"],
                                  ["--hash-workers=-1"], ["--hash-workers=257"]])
def test_hashing_bounds_out_of_range_exit_with_a_clear_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, *argv], {}, capsys).startswith(argv[0].split("=")[0])
