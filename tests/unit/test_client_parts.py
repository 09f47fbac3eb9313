"""The parts of ChatClient stand alone: each is driven here through its narrow interfaces only."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from client import ChatClient, SessionEnded, Unauthenticated
from client.errors import BadToken
from client.messaging import Messaging
from client.session import Session
from client.transport import Transport

CLIENT = Path(__file__).resolve().parents[2] / "client"
PARTS = {"client.link", "client.session", "client.messaging"}


class FakeInbox:
    """Records what the session tells the inbox part."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def begin_catch_up(self) -> int | None:
        return None

    def resumed(self, catch_up: int) -> None:
        self.calls.append(("resumed", catch_up))

    def session_started(self, catch_up: int | None) -> None:
        self.calls.append(("session_started", catch_up))

    def user_changed(self) -> None:
        self.calls.append(("user_changed", None))

    def session_ended(self, reason: str) -> None:
        self.calls.append(("session_ended", reason))


class FakeLink:
    """Answers each op from `replies`; `during` runs while a call is in flight."""

    request_timeout = 1.0
    retry_deadline = 5.0

    def __init__(self, **replies: dict[str, Any]) -> None:
        self.replies = replies
        self.ops: list[str] = []
        self.during: Coroutine[Any, Any, None] | None = None

    async def call(self, op: str, args: dict[str, Any] | None = None, *,
                   retry_connection_loss: bool = True,
                   deadline: float | None = None) -> dict[str, Any]:
        self.ops.append(op)
        if self.during is not None:
            during, self.during = self.during, None
            await during
        reply = self.replies[op]
        if reply.get("ok") is False:
            raise Unauthenticated("not logged in")
        return reply

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        coro.close()

    def check_usable(self) -> None:
        pass


class RejectingTransport:
    """A new connection on which resuming the token fails."""

    async def request(self, op: str, args: dict[str, Any], *,
                      reply_timeout: float) -> dict[str, Any]:
        raise BadToken("revoked")


def login_reply(name: str) -> dict[str, Any]:
    return {"ok": True, "username": name, "token": f"{name}:t", "unread": 0}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_chat_client_is_one_class_composed_of_parts_not_an_inheritance_chain() -> None:
    assert ChatClient.__bases__ == (object,)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_imports_no_other_part(part: str) -> None:
    path = CLIENT / f"{part.removeprefix('client.')}.py"
    assert imported_modules(path) & (PARTS | {"client.connection"}) == set()


async def test_a_session_ended_elsewhere_forgets_the_token_and_ends_the_stream() -> None:
    inbox = FakeInbox()
    session = Session(FakeLink(login=login_reply("alice")), inbox, on_change=lambda: None)
    await session.login("alice", "secret pw")
    session.ended_elsewhere("password_changed")
    assert (session.token, session.username, session.end_reason) == (
        None, None, "password_changed")
    assert inbox.calls[-1] == ("session_ended", "password_changed")


async def test_logging_in_as_another_user_resets_the_inbox_stream() -> None:
    inbox = FakeInbox()
    link = FakeLink(login=login_reply("alice"))
    session = Session(link, inbox, on_change=lambda: None)
    await session.login("alice", "secret pw")
    assert ("user_changed", None) not in inbox.calls
    link.replies["login"] = login_reply("bob")
    await session.login("bob", "secret pw")
    assert ("user_changed", None) in inbox.calls and session.username == "bob"


async def test_a_logout_whose_token_is_rejected_on_reconnect_still_succeeds() -> None:
    # The logout happened, the connection dropped before its reply, and the
    # resume on the new connection is refused: the session is over, not failed.
    link = FakeLink(login=login_reply("alice"), logout={"ok": False})
    session = Session(link, FakeInbox(), on_change=lambda: None)
    await session.login("alice", "secret pw")
    link.during = session.restore(RejectingTransport())  # type: ignore[arg-type]
    await session.logout(everywhere=False)
    assert session.token is None and session.end_reason is None


async def test_a_resume_rejected_outside_a_logout_is_fatal() -> None:
    session = Session(FakeLink(login=login_reply("alice")), FakeInbox(), on_change=lambda: None)
    await session.login("alice", "secret pw")
    transport: Transport = RejectingTransport()  # type: ignore[assignment]
    with pytest.raises(BadToken):
        await session.restore(transport)


async def test_a_send_is_pending_until_answered() -> None:
    answer = asyncio.Event()

    class SlowLink(FakeLink):
        async def call(self, op: str, args: dict[str, Any] | None = None, *,
                       retry_connection_loss: bool = True,
                       deadline: float | None = None) -> dict[str, Any]:
            await answer.wait()
            return {"ok": True, "msg_id": (args or {})["msg_id"], "ts": 1}

    session = Session(FakeLink(), FakeInbox(), on_change=lambda: None)
    messaging = Messaging(SlowLink(), dedupe_size=10, page_size=10)
    sending = asyncio.create_task(
        messaging.send("bob", "hi", msg_id="m1", deadline=None, session=session))
    await asyncio.sleep(0)
    assert messaging.pending_sends == 1
    answer.set()
    assert (await sending).msg_id == "m1"
    assert messaging.pending_sends == 0


async def test_a_stream_started_after_the_session_ended_raises_why() -> None:
    session = Session(FakeLink(login=login_reply("alice")), FakeInbox(), on_change=lambda: None)
    await session.login("alice", "secret pw")
    session.ended_elsewhere("expired")
    messaging = Messaging(FakeLink(), dedupe_size=10, page_size=10)
    with pytest.raises(SessionEnded) as ended:
        await anext(messaging.stream(auto_ack=False, session=session))
    assert ended.value.reason == "expired"
