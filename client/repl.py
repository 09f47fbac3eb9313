"""Interactive chat on a terminal (prompt_toolkit).

Incoming messages print above the input line as they arrive (patch_stdout
keeps the line being typed intact) and are acked after printing; the bottom
toolbar shows the connection and the logged-in user.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from client.connection import ChatClient
from client.errors import ChatError, SessionEnded
from client.models import State, Status
from client.present import (
    EXIT_OK,
    error_line,
    exit_code_for,
    format_message,
    format_time,
    render,
)

__all__ = ["HELP", "Repl", "run_interactive"]

log = logging.getLogger(__name__)

HELP = """\
/register NAME      create an account (asks for a password)
/login NAME         log in (asks for a password); messages then show as they arrive
/users [PATTERN]    list users (* and ? wildcards)
/msg USER TEXT      send TEXT to USER
/read [N]           show up to N (default 20) undelivered messages and remove them
/delete             delete your account (asks for the password)
/passwd             change your password (asks for the current one, the new one twice);
                    your other sessions end
/logout             log out
/logout all         log out every session of the account, on every device
/help               this text
/quit               leave (also Ctrl-D)"""


class Repl:
    """One interactive session: a prompt loop plus a task printing incoming messages."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.client = ChatClient(
            urls=args.urls,
            ca_file=args.ca_file,
            retry_deadline=args.timeout,
            on_status=self.on_status,
        )
        self.session: PromptSession[str] = PromptSession(bottom_toolbar=self.toolbar)
        # A separate session so passwords never land in the command history.
        self.password_session: PromptSession[str] = PromptSession()
        self.incoming: asyncio.Task[None] | None = None

    def toolbar(self) -> str:
        status = self.client.status
        if status.state is State.CONNECTED:
            where = f"connected to {status.url}"
        elif status.state in (State.RECONNECTING, State.CONNECTING):
            where = f"{status.state.value}..."
        else:
            where = status.state.value
        return f" {where} | {render(status.username or 'not logged in')} "

    def on_status(self, _status: Status) -> None:
        self.session.app.invalidate()  # redraw the toolbar now, not at the next key

    async def run(self) -> None:
        print("type /help for commands")
        while True:
            try:
                line = await self.session.prompt_async("> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if not line.strip():
                continue
            try:
                if not await self.dispatch(line.strip()):
                    return
            except ChatError as exc:
                print(error_line(exc))
            except Exception as exc:
                # The user gets one line, never a traceback; -v logs the details.
                log.debug("command failed", exc_info=True)
                print(f"error: {type(exc).__name__}: {render(str(exc))}")

    async def password(self, prompt: str = "password: ") -> str:
        return await self.password_session.prompt_async(prompt, is_password=True)

    async def dispatch(self, line: str) -> bool:
        """Run one command line; False means quit."""
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        parts = rest.split()
        client = self.client
        if command == "/quit":
            return False
        if command == "/help":
            print(HELP)
        elif command == "/register" and len(parts) == 1:
            name = render(await client.register(parts[0], await self.password()))
            print(f"registered {name}; now /login {name}")
        elif command == "/login" and len(parts) == 1:
            result = await client.login(parts[0], await self.password())
            print(f"logged in as {render(result.username)}, {result.unread} unread")
            self.start_incoming()
        elif command == "/users" and len(parts) <= 1:
            names = [n async for n in client.list_users(parts[0] if parts else "*")]
            print(", ".join(render(n) for n in names) if names else "no users match")
        elif command == "/msg" and len(parts) >= 2:
            to, _, text = rest.partition(" ")
            sent = await client.send(to, text.strip())
            print(f"[{format_time(sent.ts)}] -> {render(to)}: "
                  f"{render(text.strip(), multiline=True)}")
        elif command == "/read" and len(parts) <= 1 and (not parts or parts[0].isdigit()):
            await self.read(int(parts[0]) if parts else 20)
        elif command == "/delete" and not parts:
            user = client.username
            await self.stop_incoming()
            await client.delete_account(await self.password(f"password for {user}: "))
            print(f"account {render(user or '')} deleted")
        elif command == "/passwd" and not parts:
            await self.change_password()
        elif command == "/logout" and parts in ([], ["all"]):
            await self.stop_incoming()
            await client.logout(everywhere=bool(parts))
            print("logged out everywhere" if parts else "logged out")
        elif command.startswith("/"):
            print(f"error: bad command or arguments: {line!r} (type /help)")
        else:
            print("error: commands start with / (try /msg USER TEXT or /help)")
        return True

    async def change_password(self) -> None:
        current = await self.password("current password: ")
        new = await self.password("new password: ")
        if await self.password("new password again: ") != new:
            print("error: the two new passwords differ; nothing changed")
            return
        await self.client.change_password(current, new)
        print("password changed; your other sessions ended")

    async def read(self, limit: int) -> None:
        # A page is bounded in bytes too: page on (acking) until `limit` are shown.
        wanted, shown = min(max(limit, 1), 1000), 0
        while True:
            result = await self.client.fetch(wanted - shown)
            for message in result.messages:
                print(format_message(message))
            if result.messages:
                await self.client.ack(result.messages[-1])  # after showing them
            shown += len(result.messages)
            if shown >= wanted or not result.messages or result.unread == 0:
                break
        print(f"{shown} shown, {result.unread} more unread")

    def start_incoming(self) -> None:
        if self.incoming is None or self.incoming.done():
            self.incoming = asyncio.create_task(self.show_incoming())

    async def stop_incoming(self) -> None:
        if self.incoming is not None:
            self.incoming.cancel()
            # wait() rather than awaiting the task: a cancellation of *this*
            # task must still propagate, only the child's is expected.
            await asyncio.wait([self.incoming])
            self.incoming = None

    async def show_incoming(self) -> None:
        try:
            async for message in self.client.messages():
                print(format_message(message))
                await self.client.ack(message)  # only after it is on the screen
        except SessionEnded as exc:
            print(f"session ended: {render(exc.detail)}")
        except ChatError as exc:
            print(error_line(exc))


async def run_interactive(args: argparse.Namespace) -> int:
    repl = Repl(args)
    client = repl.client
    try:
        with patch_stdout(raw=True):
            try:
                await client.connect()
            except ChatError as exc:
                print(error_line(exc))
                return exit_code_for(exc)
            await repl.run()
    finally:
        await repl.stop_incoming()
        await client.close()
    return EXIT_OK
