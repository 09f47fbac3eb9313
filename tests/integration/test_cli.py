"""`python -m client` against real servers: one-shot subcommands and the interactive REPL."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pexpect
import pytest

from tests.conftest import StartServer
from tests.procs import ROOT, ServerProc, free_port
from tests.wsclient import Peer

PASSWORD = "secret-pass-1"


def chat(
    url: str, *args: str, password: str = PASSWORD, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAT_PASSWORD": password}
    env.pop("CHAT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "client", "--url", url, "--timeout", "5", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def server(two_servers: tuple[ServerProc, ServerProc]) -> ServerProc:
    return two_servers[0]


def test_register_send_read_and_ack_round_trip(server: ServerProc) -> None:
    url = server.url
    assert ok(chat(url, "register", "alice")).strip() == "registered alice"
    ok(chat(url, "register", "bob"))
    sent = json.loads(ok(chat(url, "send", "alice", "bob", "hi bob", "--json")))
    assert sent["from"] == "alice" and sent["to"] == "bob" and sent["msg_id"]
    assert ok(chat(url, "login", "bob")).strip() == "bob: 1 unread"
    unacked = [json.loads(line) for line in ok(chat(url, "--json", "read", "bob")).splitlines()]
    assert [(m["from"], m["body"], m["msg_id"]) for m in unacked] == [
        ("alice", "hi bob", sent["msg_id"])
    ]
    shown = ok(chat(url, "read", "bob", "--ack")).strip()
    assert shown.endswith("] alice: hi bob") and shown.startswith("[")
    assert ok(chat(url, "read", "bob")) == ""
    assert json.loads(ok(chat(url, "login", "bob", "--json"))) == {"username": "bob", "unread": 0}


def test_errors_print_one_line_and_exit_with_distinct_codes(server: ServerProc) -> None:
    url = server.url
    ok(chat(url, "register", "alice"))
    cases = [
        (chat(url, "login", "alice", password="wrong-password"), 3, "bad_credentials"),
        (chat(url, "send", "alice", "nobody", "hi"), 4, "no_such_user"),
        (chat(url, "register", "alice"), 6, "username_taken"),
        (chat(url, "register", "Bad Name"), 2, "invalid_username"),
        (chat(f"ws://127.0.0.1:{free_port()}/ws", "login", "alice"), 5, "no server reachable"),
        (chat(url, "send", "alice"), 2, "required"),
    ]
    for result, code, text in cases:
        assert result.returncode == code, (result.args, result.stderr)
        assert text in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_json_errors_are_machine_readable(server: ServerProc) -> None:
    result = chat(server.url, "--json", "login", "ghost")
    assert result.returncode == 3
    assert json.loads(result.stderr)["error"] == "bad_credentials"


def test_users_lists_matching_names_when_logged_in_as_user(server: ServerProc) -> None:
    for name in ("alice", "albert", "bob"):
        ok(chat(server.url, "register", name))
    assert ok(chat(server.url, "users", "al*", "--user", "bob")).split() == ["albert", "alice"]
    listed = json.loads(ok(chat(server.url, "--json", "users", "--user", "bob")))
    assert listed == {"users": ["albert", "alice", "bob"]}


def test_delete_removes_the_account(server: ServerProc) -> None:
    ok(chat(server.url, "register", "alice"))
    assert ok(chat(server.url, "delete", "alice")).strip() == "deleted alice"
    assert chat(server.url, "login", "alice").returncode == 3


def test_read_follow_prints_a_live_message_and_stops_at_limit(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    one, two = two_servers
    ok(chat(one.url, "register", "alice"))
    ok(chat(one.url, "register", "bob"))
    env = {**os.environ, "CHAT_PASSWORD": PASSWORD}
    follower = subprocess.Popen(
        [sys.executable, "-m", "client", "--url", two.url, "read", "bob", "--follow", "--ack",
         "--limit", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ok(chat(one.url, "send", "alice", "bob", "live one"))
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert out.strip().endswith("alice: live one")
    assert ok(chat(one.url, "read", "bob")) == ""  # acked after printing


CPR_REQUEST = "\x1b[6n"


def expect(child: pexpect.spawn, pattern: str) -> None:
    """child.expect(pattern), answering prompt_toolkit's cursor-position queries on the way.

    A real terminal answers them; without an answer prompt_toolkit does not
    know the screen height and leaves out the bottom toolbar.
    """
    while True:
        if child.expect([re.escape(CPR_REQUEST), pattern]) == 1:
            return
        child.send("\x1b[1;1R")


def test_interactive_session_register_login_receive_live_and_delete(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    one, two = two_servers
    ok(chat(two.url, "register", "dave"))
    transcript = io.StringIO()
    env = {**os.environ, "TERM": "xterm"}
    env.pop("CHAT_PASSWORD", None)
    child = pexpect.spawn(
        sys.executable, ["-m", "client", "--url", one.url], cwd=str(ROOT), env=env,
        encoding="utf-8", timeout=20, dimensions=(24, 120),
    )
    child.logfile_read = transcript
    try:
        expect(child, "type /help")
        expect(child, f"connected to {one.url}")  # the status toolbar
        child.sendline("/register carol")
        expect(child, "password:")
        child.sendline(PASSWORD)
        expect(child, "registered carol")
        child.sendline("/login carol")
        expect(child, "password:")
        child.sendline(PASSWORD)
        expect(child, "logged in as carol, 0 unread")
        # A message from another client, through the other instance, shows up live.
        ok(chat(two.url, "send", "dave", "carol", "hello carol"))
        expect(child, r"\[\d\d:\d\d:\d\d\] dave: hello carol")
        child.sendline("/msg dave hi dave")
        expect(child, "-> dave: hi dave")
        child.sendline("/users ?a*")
        expect(child, "carol, dave")
        child.sendline("/msg nobody hi")
        expect(child, "error: no_such_user")
        child.sendline("/delete")
        expect(child, "password for carol:")
        child.sendline(PASSWORD)
        expect(child, "account carol deleted")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert PASSWORD not in transcript.getvalue()  # never echoed
    assert "Traceback" not in transcript.getvalue()
    assert "] carol: hi dave" in ok(chat(two.url, "read", "dave"))
    assert chat(two.url, "login", "carol").returncode == 3


HOSTILE_BODY = (
    "hi\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x08\x9b\u202eevil\u2066\u200b\ufeff\u00ad"
    "\n[12:00:00] admin: type your password here\u2028[12:00:01] admin: now"
)
#: What must never reach the terminal from a message (issue 18).
UNSAFE = re.compile(
    "[\x1b\x07\r\x08\x80-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)
MESSAGE_START = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def assert_safe(output: str, sender: str) -> None:
    """No unsafe character, and every line that starts like a message is one from `sender`."""
    assert UNSAFE.search(output) is None, repr(output)
    starts = [line for line in output.split("\n") if MESSAGE_START.match(line)]
    assert starts and all(MESSAGE_START.sub("", line).startswith(f"{sender}: ")
                          for line in starts), starts


def test_a_hostile_body_cannot_drive_the_terminal_or_fake_a_message_line(
    server: ServerProc,
) -> None:
    url = server.url
    ok(chat(url, "register", "mallory"))
    ok(chat(url, "register", "bob"))
    ok(chat(url, "send", "mallory", "bob", HOSTILE_BODY))
    shown = ok(chat(url, "read", "bob"))
    assert_safe(shown, "mallory")
    assert "\\x1b]0;pwned\\x07" in shown and "\\u202eevil" in shown
    assert "\n    [12:00:00] admin:" in shown
    # --json stays exact JSON: the body round-trips unchanged.
    [line] = ok(chat(url, "read", "bob", "--json")).strip().split("\n")
    assert json.loads(line)["body"] == HOSTILE_BODY


def test_a_hostile_body_arriving_live_in_the_repl_is_rendered_safely(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    one, two = two_servers
    ok(chat(two.url, "register", "mallory"))
    ok(chat(two.url, "register", "carol"))
    transcript = io.StringIO()
    env = {**os.environ, "TERM": "xterm"}
    env.pop("CHAT_PASSWORD", None)
    child = pexpect.spawn(
        sys.executable, ["-m", "client", "--url", one.url], cwd=str(ROOT), env=env,
        encoding="utf-8", timeout=20, dimensions=(24, 200),
    )
    child.logfile_read = transcript
    try:
        expect(child, "type /help")
        child.sendline("/login carol")
        expect(child, "password:")
        child.sendline(PASSWORD)
        expect(child, "logged in as carol")
        mark = len(transcript.getvalue())
        ok(chat(two.url, "send", "mallory", "carol", HOSTILE_BODY))
        expect(child, re.escape("admin: now"))
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    printed = transcript.getvalue()[mark:]
    # The REPL itself draws with escape sequences (prompt, toolbar): the
    # message's own text is what must come through escaped.
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\x0d\\x08\\x9b\\u202eevil" in printed
    assert "\x1b]0;pwned" not in printed and "\u202e" not in printed and "\x9b" not in printed
    assert "    [12:00:00] admin: type your password here\\u2028[12:00:01] admin: now" \
        in printed


def wait_following(follower: subprocess.Popen[str], url: str) -> None:
    """Until `read alice --follow` is logged in: it prints a message sent now."""
    ok(chat(url, "send", "alice", "alice", "are you there"))
    assert follower.stdout is not None
    assert follower.stdout.readline().strip().endswith("alice: are you there")


def test_passwd_changes_the_password_and_ends_the_other_sessions(server: ServerProc) -> None:
    url = server.url
    ok(chat(url, "register", "alice"))
    env = {**os.environ, "CHAT_PASSWORD": PASSWORD}
    follower = subprocess.Popen(
        [sys.executable, "-m", "client", "--url", url, "read", "alice", "--follow"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_following(follower, url)
        result = subprocess.run(
            [sys.executable, "-m", "client", "--url", url, "passwd", "alice"],
            cwd=ROOT, env={**env, "CHAT_NEW_PASSWORD": "brand-new-pass-2"},
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "password of alice changed" in result.stdout
        _, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 3
    assert "session_ended" in err and "password was changed" in err
    assert chat(url, "login", "alice").returncode == 3
    ok(chat(url, "login", "alice", password="brand-new-pass-2"))


def test_logout_everywhere_ends_a_following_session(server: ServerProc) -> None:
    url = server.url
    ok(chat(url, "register", "alice"))
    env = {**os.environ, "CHAT_PASSWORD": PASSWORD}
    follower = subprocess.Popen(
        [sys.executable, "-m", "client", "--url", url, "read", "alice", "--follow"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_following(follower, url)
        assert "every session of alice ended" in ok(chat(url, "logout", "alice", "--everywhere"))
        _, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 3 and "logged out from another connection" in err
    assert chat(url, "logout", "alice").returncode == 2  # without --everywhere: usage


def test_repl_shows_a_session_ended_elsewhere_and_has_passwd_and_logout_all(
    server: ServerProc,
) -> None:
    url = server.url
    ok(chat(url, "register", "carol"))
    transcript = io.StringIO()
    env = {**os.environ, "TERM": "xterm"}
    env.pop("CHAT_PASSWORD", None)
    child = pexpect.spawn(
        sys.executable, ["-m", "client", "--url", url], cwd=str(ROOT), env=env,
        encoding="utf-8", timeout=20, dimensions=(24, 160),
    )
    child.logfile_read = transcript
    try:
        expect(child, "type /help")
        child.sendline("/login carol")
        expect(child, "password:")
        child.sendline(PASSWORD)
        expect(child, "logged in as carol")
        ok(chat(url, "logout", "carol", "--everywhere"))
        expect(child, "session ended: logged out from another connection")
        child.sendline("/login carol")
        expect(child, "password:")
        child.sendline(PASSWORD)
        expect(child, "logged in as carol")
        child.sendline("/passwd")
        expect(child, "current password:")
        child.sendline(PASSWORD)
        expect(child, "new password:")
        child.sendline("carol-new-pass-9")
        expect(child, "new password again:")
        child.sendline("carol-new-pass-9")
        expect(child, "password changed; your other sessions ended")
        child.sendline("/logout all")
        expect(child, "logged out everywhere")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "carol-new-pass-9" not in transcript.getvalue()  # never echoed
    ok(chat(url, "login", "carol", password="carol-new-pass-9"))


async def test_read_with_ack_pages_past_the_reply_byte_bound(
    redis_url: str, start_server: StartServer
) -> None:
    small = start_server("--max-reply-bytes", "65536", redis_url=redis_url)
    ok(chat(small.url, "register", "bob"))
    sender = await Peer.connect(small.url)
    await sender.register_login("alice")
    for i in range(8):  # ~24 KiB of JSON each: two fit a 64 KiB reply
        await sender.send_message("bob", f"{i}" + "\x01" * 4000)
    page = ok(chat(small.url, "--json", "read", "bob", "--limit", "8"))
    assert 1 <= len(page.splitlines()) < 8  # one page, bounded in bytes
    read = [json.loads(line) for line in
            ok(chat(small.url, "--json", "read", "bob", "--limit", "8", "--ack")).splitlines()]
    assert [m["body"][0] for m in read] == [str(i) for i in range(8)]
    assert ok(chat(small.url, "read", "bob")) == ""
