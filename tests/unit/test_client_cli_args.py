"""Command-line parsing of `python -m client`."""

from __future__ import annotations

import pytest

from client.cli import UsageError, parse_args

URL = "ws://127.0.0.1:1/ws"


def test_no_command_means_interactive() -> None:
    args = parse_args(["--url", URL], env={})
    assert args.command is None
    assert args.urls == [URL]


def test_url_defaults_to_chat_url_env_and_accepts_a_comma_list() -> None:
    args = parse_args(["register", "alice"], env={"CHAT_URL": "ws://a/ws, ws://b/ws"})
    assert args.urls == ["ws://a/ws", "ws://b/ws"]


def test_repeated_url_flags_are_all_kept_and_override_env() -> None:
    args = parse_args(["--url", "ws://a/ws", "--url", "ws://b/ws", "login", "al"],
                      env={"CHAT_URL": "ws://c/ws"})
    assert args.urls == ["ws://a/ws", "ws://b/ws"]


def test_missing_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CHAT_URL"):
        parse_args(["login", "alice"], env={})


def test_non_websocket_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="ws://"):
        parse_args(["--url", "http://x", "login", "alice"], env={})


def test_send_takes_sender_recipient_and_text() -> None:
    args = parse_args(["--url", URL, "send", "alice", "bob", "hi there"], env={})
    assert (args.command, args.user, args.to, args.text) == ("send", "alice", "bob", "hi there")


def test_common_options_work_after_the_command_too() -> None:
    args = parse_args(["send", "alice", "bob", "hi", "--json", "--url", URL], env={})
    assert args.json is True
    assert args.urls == [URL]


def test_read_flags() -> None:
    args = parse_args(["--url", URL, "read", "bob", "--ack", "--limit", "5", "--follow"], env={})
    assert (args.ack, args.limit, args.follow) == (True, 5, True)


def test_read_limit_out_of_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_args(["--url", URL, "read", "bob", "--limit", "0"], env={})


def test_users_needs_a_login_user() -> None:
    with pytest.raises(UsageError, match="--user"):
        parse_args(["--url", URL, "users"], env={})
    args = parse_args(["--url", URL, "users", "a*", "--user", "alice"], env={})
    assert (args.pattern, args.user) == ("a*", "alice")


def test_missing_argument_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        parse_args(["--url", URL, "send", "alice"], env={})
    assert "\n" not in str(info.value)


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_args(["--url", URL, "frobnicate"], env={})
