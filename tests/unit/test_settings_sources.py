"""Where settings come from: flags beat CHAT_* variables beat defaults, every field has
both, `--help` lists them; values that do not parse exit with one line.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.__main__ import env_name, load_settings
from server.settings import Settings, fields
from tests.unit.settings_load import URL, fails

ROOT = Path(__file__).resolve().parents[2]


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
