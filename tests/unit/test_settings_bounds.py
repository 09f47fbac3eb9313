"""Every numeric knob's bounds (server/settings.py metadata): the documented defaults,
and a value outside its bounds exits with one line naming it.
"""

from __future__ import annotations

import os

import pytest

from server.__main__ import load_settings
from tests.unit.settings_load import URL, fails


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
