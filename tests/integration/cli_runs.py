"""Running `python -m client` in tests: one-shot commands, `read --follow`, the REPL.

`chat` runs one command (password from CHAT_PASSWORD) and returns its
result; `follow` starts `read USER --follow`; `repl` starts the interactive
client on a pseudo-terminal, and `expect` waits for its output while
answering the terminal queries a real terminal would.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pexpect

from tests.procs import ROOT

PASSWORD = "secret-pass-1"
CPR_REQUEST = "\x1b[6n"


def chat(
    url: str, *args: str, password: str = PASSWORD, timeout: float = 30,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m client --url URL ARGS...`, finished; `env` adds variables."""
    run_env = {**os.environ, "CHAT_PASSWORD": password, **(env or {})}
    run_env.pop("CHAT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "client", "--url", url, "--timeout", "5", *args],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def follow(url: str, user: str, *args: str) -> subprocess.Popen[str]:
    """`read USER --follow ARGS...` running, its output piped."""
    env = {**os.environ, "CHAT_PASSWORD": PASSWORD}
    return subprocess.Popen(
        [sys.executable, "-m", "client", "--url", url, "read", user, "--follow", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_following(follower: subprocess.Popen[str], url: str) -> None:
    """Until `read alice --follow` is logged in: it prints a message sent now."""
    ok(chat(url, "send", "alice", "alice", "are you there"))
    assert follower.stdout is not None
    assert follower.stdout.readline().strip().endswith("alice: are you there")


def repl(url: str, *, width: int) -> tuple[pexpect.spawn, io.StringIO]:
    """The interactive client on a 24 x `width` terminal, and what it printed so far
    (no CHAT_PASSWORD: it asks)."""
    transcript = io.StringIO()
    env = {**os.environ, "TERM": "xterm"}
    env.pop("CHAT_PASSWORD", None)
    child = pexpect.spawn(
        sys.executable, ["-m", "client", "--url", url], cwd=str(ROOT), env=env,
        encoding="utf-8", timeout=20, dimensions=(24, width),
    )
    child.logfile_read = transcript
    return child, transcript


def expect(child: pexpect.spawn, pattern: str) -> None:
    """child.expect(pattern), answering prompt_toolkit's cursor-position queries on the way.

    A real terminal answers them; without an answer prompt_toolkit does not
    know the screen height and leaves out the bottom toolbar.
    """
    while True:
        if child.expect([re.escape(CPR_REQUEST), pattern]) == 1:
            return
        child.send("\x1b[1;1R")


def repl_login(child: pexpect.spawn, name: str) -> None:
    """`/login NAME` in the REPL, answering its password prompt."""
    child.sendline(f"/login {name}")
    expect(child, "password:")
    child.sendline(PASSWORD)
    expect(child, f"logged in as {name}")
