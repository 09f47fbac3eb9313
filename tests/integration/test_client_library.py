"""ChatClient against real server instances over a real Redis."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from client import (
    AccountDeleted,
    BadCredentials,
    ChatClient,
    Message,
    NoSuchUser,
    SessionEnded,
    State,
    Unauthenticated,
    UsernameTaken,
)
from tests.conftest import StartServer
from tests.procs import ServerProc

PASSWORD = "correct horse"


async def eventually(predicate: Callable[[], bool], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., ChatClient]]:
    """Make ChatClients with short backoff; all closed at teardown."""
    made: list[ChatClient] = []

    def make(*urls: str, **kwargs: Any) -> ChatClient:
        client = ChatClient(urls=list(urls), backoff_base=0.05, backoff_cap=0.5,
                            retry_deadline=30.0, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def user(client: ChatClient, name: str) -> ChatClient:
    await client.connect()
    await client.register(name, PASSWORD)
    await client.login(name, PASSWORD)
    return client


async def collect(client: ChatClient, count: int, out: list[Message]) -> None:
    """Read `count` messages from client.messages(), acking each after storing it."""
    async for message in client.messages():
        out.append(message)
        await client.ack(message)
        if len(out) >= count:
            return


async def test_message_sent_on_one_instance_is_pushed_live_on_the_other(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url), "alice")
    bob = await user(clients(two.url), "bob")
    received: list[Message] = []
    reader = asyncio.create_task(collect(bob, 1, received))
    msg_id, ts = await alice.send("bob", "hello bob")
    await asyncio.wait_for(reader, 15)
    assert [(m.msg_id, m.sender, m.to, m.body, m.ts) for m in received] == [
        (msg_id, "alice", "bob", "hello bob", ts)
    ]


async def test_backlog_is_yielded_before_live_messages_in_order(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url), "alice")
    bob = clients(two.url)
    await bob.connect()
    await bob.register("bob", PASSWORD)
    for i in range(3):
        await alice.send("bob", f"queued {i}")
    result = await bob.login("bob", PASSWORD)
    assert result.unread == 3
    received: list[Message] = []
    reader = asyncio.create_task(collect(bob, 5, received))
    await alice.send("bob", "live 3")
    await alice.send("bob", "live 4")
    await asyncio.wait_for(reader, 15)
    assert [m.body for m in received] == ["queued 0", "queued 1", "queued 2", "live 3", "live 4"]
    assert (await bob.fetch()).messages == []  # all acked


async def test_sigkill_of_senders_instance_mid_200_sends_delivers_each_once_in_order(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url, two.url), "alice")  # first URL: instance one
    assert alice.url == one.url
    bob = await user(clients(two.url), "bob")
    received: list[Message] = []
    reader = asyncio.create_task(collect(bob, 200, received))

    async def kill_after(count: int) -> None:
        await eventually(lambda: len(sent) >= count)
        await asyncio.to_thread(one.kill)  # SIGKILL, possibly with a send in flight

    sent: list[str] = []
    killer = asyncio.create_task(kill_after(60))
    for i in range(200):
        msg_id, _ = await alice.send("bob", f"msg {i}")
        sent.append(msg_id)
    await killer
    assert alice.url == two.url
    await asyncio.wait_for(reader, 30)
    await asyncio.sleep(0.5)  # a late duplicate would show up as unread or extra
    assert [m.body for m in received] == [f"msg {i}" for i in range(200)]
    assert [m.msg_id for m in received] == sent
    assert (await bob.fetch()).messages == []


async def test_sigterm_moves_the_client_to_the_other_instance_keeping_the_session(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    states: list[State] = []
    alice = clients(one.url, two.url, on_status=lambda status: states.append(status.state))
    await user(alice, "alice")
    await user(clients(two.url), "bob")
    one.signal(signal.SIGTERM)  # graceful stop: shutdown event, then close 1001
    await eventually(lambda: alice.url == two.url)
    assert State.RECONNECTING in states
    assert alice.username == "alice"
    await alice.send("bob", "after the move")  # resumed: no login needed
    assert [name async for name in alice.list_users("b*")] == ["bob"]


async def test_resume_after_reconnect_needs_no_password(
    start_server: StartServer, redis_url: str, clients: Callable[..., ChatClient]
) -> None:
    one = start_server(redis_url=redis_url)
    two = start_server(redis_url=redis_url)
    alice = await user(clients(one.url, two.url), "alice")
    token = alice.token
    one.kill()
    await eventually(lambda: alice.url == two.url)
    assert alice.token == token
    assert [name async for name in alice.list_users()] == ["alice"]


async def test_logout_elsewhere_surfaces_session_ended_and_the_token_is_never_resumed(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url, two.url), "alice")
    assert alice.token is not None
    other = clients(two.url)
    await other.connect()
    await other.resume(alice.token)
    await other.logout()  # revokes alice's token while her connection lives on
    with pytest.raises(SessionEnded) as ended:
        async for _ in alice.messages():
            pass
    assert ended.value.reason == "logout"
    assert alice.token is None and alice.username is None
    assert alice.session_end_reason == "logout"
    one.kill()  # the reconnect must not resume the dead token
    with pytest.raises(Unauthenticated):
        await alice.send("alice", "nope")
    await alice.login("alice", PASSWORD)  # the connection is still good for a new login
    assert (await alice.send("alice", "back")).ts > 0


async def test_change_password_keeps_this_client_and_ends_the_others(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url), "alice")
    phone = clients(two.url)
    await phone.connect()
    await phone.login("alice", PASSWORD)
    await alice.change_password(PASSWORD, "new password 2")
    with pytest.raises(SessionEnded) as ended:
        async for _ in phone.messages():
            pass
    assert ended.value.reason == "password_changed"
    assert (await alice.send("alice", "still in")).ts > 0
    with pytest.raises(BadCredentials):
        await phone.login("alice", PASSWORD)
    await phone.login("alice", "new password 2")


async def test_logout_everywhere_ends_the_other_clients_sessions(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    alice = await user(clients(one.url), "alice")
    laptop = clients(two.url)
    await laptop.connect()
    await laptop.login("alice", PASSWORD)
    await alice.logout(everywhere=True)
    assert alice.token is None
    with pytest.raises(SessionEnded):
        async for _ in laptop.messages():
            pass


async def test_account_deleted_elsewhere_ends_the_session(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    one, two = two_servers
    first = await user(clients(one.url), "alice")
    second = clients(two.url)
    await second.connect()
    await second.login("alice", PASSWORD)
    await second.delete_account(PASSWORD)
    assert second.username is None
    with pytest.raises(AccountDeleted):
        async for _ in first.messages():
            pass


async def test_list_users_follows_the_cursor_over_every_page(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    client = await user(clients(two_servers[0].url), "admin")
    names = [f"u{i:02d}" for i in range(25)]
    for name in names:
        await client.register(name, PASSWORD)
    assert [n async for n in client.list_users("u*", page_size=7)] == names


async def test_errors_are_typed(
    two_servers: tuple[ServerProc, ServerProc], clients: Callable[..., ChatClient]
) -> None:
    client = await user(clients(two_servers[0].url), "alice")
    with pytest.raises(UsernameTaken):
        await client.register("alice", PASSWORD)
    with pytest.raises(NoSuchUser):
        await client.send("nobody", "hi")
    with pytest.raises(BadCredentials):
        await client.login("alice", "wrong password")
