"""The interactive `python -m client` REPL against real servers: register, log in,
receive live through another instance, message, list users, delete."""

from __future__ import annotations

import pexpect

from tests.integration.cli_runs import PASSWORD, chat, expect, ok, repl
from tests.procs import ServerProc


def test_interactive_session_register_login_receive_live_and_delete(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    one, two = two_servers
    ok(chat(two.url, "register", "dave"))
    child, transcript = repl(one.url, width=120)
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
