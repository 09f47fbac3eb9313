"""`python -m client`: interactive chat (no subcommand) or one-shot subcommands for scripts.

Exit codes: 0 ok, 1 internal error, 2 usage / rejected input, 3 auth
(bad credentials or token, not logged in), 4 no such user, 5 unavailable
(no server reachable, unavailable, rate limited, timeout), 6 username taken.
Errors print as one line on stderr (a JSON object with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from client.connection import ChatClient
from client.errors import ChatError
from client.models import Message
from client.present import (
    EXIT_OK,
    EXIT_USAGE,
    error_line,
    exit_code_for,
    format_message,
    json_line,
    render,
)

__all__ = ["UsageError", "build_parser", "main", "parse_args"]

log = logging.getLogger(__name__)

EPILOG = """\
commands (each logs in as USER, does its work, logs out):
  register USER             create an account
  login USER                check the password, print the unread count
  send USER TO TEXT         send TEXT from USER to TO
  read USER [--ack] [--limit N] [--follow]
                            print undelivered messages; --ack removes them after
                            printing; --follow keeps printing new ones
  users [PATTERN] --user U  list user names matching PATTERN (* and ?), as U
  delete USER               delete the account and its undelivered messages
  passwd USER               change the password (the new one from CHAT_NEW_PASSWORD,
                            else asked twice without echo); ends every other session
  logout USER --everywhere  end every session of USER, on every device

With no command: an interactive session (type /help).
The password comes from CHAT_PASSWORD, else a no-echo prompt on a terminal.
Server URLs: --url (repeat, or comma-separated), default $CHAT_URL.
Exit codes: 0 ok, 1 internal error, 2 usage or rejected input, 3 auth failure,
4 no such user, 5 server unavailable or unreachable, 6 username taken.
"""


class UsageError(Exception):
    """Bad command line or missing input; exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line on stderr (argparse would print the usage block too).
        raise UsageError(f"{message} (see --help)")


def _common_options(*, suppress: bool) -> _Parser:
    """Options accepted before and after the command (`--json send ...` or `send ... --json`)."""
    default: Any = argparse.SUPPRESS if suppress else None
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--url", action="append", default=default, metavar="URL",
        help="server WebSocket URL, e.g. ws://127.0.0.1:8765/ws (repeat for failover)",
    )
    parent.add_argument("--ca-file", default=default, help="CA bundle to verify wss:// servers")
    parent.add_argument(
        "--json", action="store_true", default=default, help="machine-readable output"
    )
    parent.add_argument(
        "--timeout", type=float, default=default, metavar="SECONDS",
        help="how long to keep retrying an unreachable or unavailable server (default 15)",
    )
    parent.add_argument(
        "-v", "--verbose", action="count", default=default, help="log to stderr (-vv: debug)"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m client",
        description="Chat client: interactive with no command, one-shot with a command.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(suppress=False)],
    )
    common = [_common_options(suppress=True)]
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("register", parents=common, help="create an account")
    p.add_argument("user")
    p = sub.add_parser("login", parents=common, help="check the password, show unread count")
    p.add_argument("user")
    p = sub.add_parser("send", parents=common, help="send a message")
    p.add_argument("user", help="the sender (logs in as this user)")
    p.add_argument("to", help="the recipient")
    p.add_argument("text")
    p = sub.add_parser("read", parents=common, help="print undelivered messages")
    p.add_argument("user")
    p.add_argument("--ack", action="store_true", help="remove messages after printing them")
    p.add_argument("--limit", type=int, default=None, help="at most N messages")
    p.add_argument("--follow", action="store_true", help="keep printing new messages")
    p = sub.add_parser("users", parents=common, help="list user names")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--user", dest="user", help="log in as this user (default $CHAT_USER)")
    p = sub.add_parser("delete", parents=common, help="delete the account")
    p.add_argument("user")
    p = sub.add_parser("passwd", parents=common, help="change the password")
    p.add_argument("user")
    p = sub.add_parser("logout", parents=common, help="end sessions of the account")
    p.add_argument("user")
    p.add_argument("--everywhere", action="store_true",
                   help="end every session of the account, on every device")
    return parser


def parse_args(argv: Sequence[str], env: dict[str, str] | None = None) -> argparse.Namespace:
    """Parse and validate; raises UsageError. `env` defaults to os.environ."""
    env = dict(os.environ) if env is None else env
    args = build_parser().parse_args(list(argv))
    raw_urls: list[str] = args.url or ([env["CHAT_URL"]] if env.get("CHAT_URL") else [])
    args.urls = [u.strip() for item in raw_urls for u in item.split(",") if u.strip()]
    if not args.urls:
        raise UsageError("no server URL: pass --url ws://HOST:PORT/ws or set CHAT_URL")
    for url in args.urls:
        if not url.startswith(("ws://", "wss://")):
            raise UsageError(f"not a ws:// or wss:// URL: {url}")
    args.timeout = 15.0 if args.timeout is None else args.timeout
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.command == "users":
        args.user = args.user or env.get("CHAT_USER")
    if args.command == "users" and not args.user:
        raise UsageError("users needs a login: pass --user NAME or set CHAT_USER")
    if args.command == "read" and args.limit is not None and not 1 <= args.limit <= 1000:
        raise UsageError("--limit must be between 1 and 1000")
    if args.command == "logout" and not args.everywhere:
        # A one-shot command's own session ends when it exits anyway.
        raise UsageError("logout needs --everywhere (it ends every session of the account)")
    return args


def read_password(user: str, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    if env.get("CHAT_PASSWORD"):
        return env["CHAT_PASSWORD"]
    if not sys.stdin.isatty():
        raise UsageError("no password: set CHAT_PASSWORD or run on a terminal")
    return getpass.getpass(f"password for {user}: ")


def read_new_password(env: dict[str, str] | None = None) -> str:
    """CHAT_NEW_PASSWORD, else asked twice without echo (they must match)."""
    env = dict(os.environ) if env is None else env
    if env.get("CHAT_NEW_PASSWORD"):
        return env["CHAT_NEW_PASSWORD"]
    if not sys.stdin.isatty():
        raise UsageError("no new password: set CHAT_NEW_PASSWORD or run on a terminal")
    first = getpass.getpass("new password: ")
    if getpass.getpass("new password again: ") != first:
        raise UsageError("the two new passwords differ")
    return first


def _out(args: argparse.Namespace, text: str, data: Any) -> None:
    print(json_line(data) if args.json else text, flush=True)


def _show(args: argparse.Namespace, message: Message) -> None:
    _out(args, format_message(message), message.to_wire())


async def run_command(args: argparse.Namespace, password: str) -> None:
    """Run one subcommand; raises ChatError on failure."""
    client = ChatClient(
        urls=args.urls, ca_file=args.ca_file, retry_deadline=args.timeout,
        request_timeout=min(10.0, args.timeout),
    )
    async with client:
        if args.command == "register":
            name = await client.register(args.user, password)
            _out(args, f"registered {render(name)}", {"username": name})
            return
        login = await client.login(args.user, password)
        try:
            await _logged_in_command(args, client, login.username, login.unread)
        finally:
            if args.command != "delete" and client.token is not None:
                await _logout_quietly(client)


async def _logged_in_command(
    args: argparse.Namespace, client: ChatClient, user: str, unread: int
) -> None:
    if args.command == "login":
        _out(args, f"{render(user)}: {unread} unread", {"username": user, "unread": unread})
    elif args.command == "send":
        sent = await client.send(args.to, args.text)
        _out(args, f"sent {render(sent.msg_id)} at {sent.ts}",
             {"msg_id": sent.msg_id, "ts": sent.ts, "from": user, "to": args.to})
    elif args.command == "users":
        names = [name async for name in client.list_users(args.pattern)]
        _out(args, "\n".join(render(name) for name in names), {"users": names})
    elif args.command == "passwd":
        await client.change_password(args.password, args.new_password)
        _out(args, f"password of {render(user)} changed; its other sessions ended",
             {"username": user, "password_changed": True})
    elif args.command == "logout":
        await client.logout(everywhere=True)
        _out(args, f"every session of {render(user)} ended",
             {"username": user, "logged_out_everywhere": True})
    elif args.command == "delete":
        await client.delete_account(args.password)
        _out(args, f"deleted {render(user)}", {"username": user, "deleted": True})
    elif args.command == "read":
        await _read(args, client)


async def _read(args: argparse.Namespace, client: ChatClient) -> None:
    if args.follow:
        shown = 0
        async for message in client.messages():
            _show(args, message)
            if args.ack:
                await client.ack(message)  # after printing: a crash re-shows, never loses
            shown += 1
            if args.limit is not None and shown >= args.limit:
                return
        return
    # A reply is bounded in bytes, so a page may hold fewer than asked while
    # more are unread: with --ack, page on (acking is what moves the next
    # page forward); without, say how many more wait.
    wanted, shown = args.limit or 100, 0
    while shown < wanted:
        result = await client.fetch(wanted - shown)
        for message in result.messages:
            _show(args, message)
        shown += len(result.messages)
        if args.ack and result.messages:
            await client.ack(result.messages[-1])  # after printing, as above
        if not result.messages or result.unread == 0 or not args.ack:
            if shown < wanted and result.unread and not args.json:
                print(f"({result.unread} more unread; --ack reads on)", file=sys.stderr)
            return


async def _logout_quietly(client: ChatClient) -> None:
    try:
        await client.logout()
    except ChatError as exc:
        # The command itself succeeded; an unrevoked token just expires.
        log.info("logout failed: %s", exc)


def _setup_logging(verbose: int | None) -> None:
    level = {0: logging.CRITICAL + 1, 1: logging.INFO}.get(verbose or 0, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    as_json = "--json" in argv
    try:
        args = parse_args(argv)
        _setup_logging(args.verbose)
        if args.command is None:
            from client.repl import run_interactive  # prompt_toolkit only when needed

            return asyncio.run(run_interactive(args))
        args.password = read_password(args.user)
        if args.command == "passwd":
            args.new_password = read_new_password()
        asyncio.run(run_command(args, args.password))
        return EXIT_OK
    except UsageError as exc:
        line = json_line({"error": "usage", "detail": str(exc)}) if as_json else f"error: {exc}"
        print(line, file=sys.stderr)
        return EXIT_USAGE
    except ChatError as exc:
        print(error_line(exc, as_json=as_json), file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
