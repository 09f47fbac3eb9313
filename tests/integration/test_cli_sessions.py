"""`python -m client` ending sessions: passwd and logout --everywhere end the other
sessions, one-shot and in the interactive REPL."""

from __future__ import annotations

import pexpect

from tests.integration.cli_runs import (
    PASSWORD,
    chat,
    expect,
    follow,
    ok,
    repl,
    repl_login,
    wait_following,
)
from tests.procs import ServerProc


def test_passwd_changes_the_password_and_ends_the_other_sessions(server: ServerProc) -> None:
    url = server.url
    ok(chat(url, "register", "alice"))
    follower = follow(url, "alice")
    try:
        wait_following(follower, url)
        result = chat(url, "passwd", "alice", env={"CHAT_NEW_PASSWORD": "brand-new-pass-2"})
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
    follower = follow(url, "alice")
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
    child, transcript = repl(url, width=160)
    try:
        expect(child, "type /help")
        repl_login(child, "carol")
        ok(chat(url, "logout", "carol", "--everywhere"))
        expect(child, "session ended: logged out from another connection")
        repl_login(child, "carol")
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
