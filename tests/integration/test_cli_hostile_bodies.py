"""Issue 18: a message body cannot drive the terminal or fake a message line, in
`read` output or arriving live in the REPL (`--json` stays exact)."""

from __future__ import annotations

import json
import re

import pexpect

from tests.integration.cli_runs import chat, expect, ok, repl, repl_login
from tests.procs import ServerProc

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
    child, transcript = repl(one.url, width=200)
    try:
        expect(child, "type /help")
        repl_login(child, "carol")
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
