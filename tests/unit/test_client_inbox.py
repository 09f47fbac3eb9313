"""Ordering of messages(): the fetched backlog first, live pushes held until it is done."""

from __future__ import annotations

from client.inbox import Inbox, PageEnd
from client.models import Message


def msg(n: int, sender: str = "alice") -> Message:
    return Message(msg_id=f"m{n}", sender=sender, to="bob", body=f"text {n}", ts=n, seq=f"{n}-0")


async def drain(inbox: Inbox, count: int) -> list[Message | PageEnd | None]:
    return [await inbox.get() for _ in range(count)]


async def test_pushes_during_catch_up_follow_the_fetched_backlog() -> None:
    inbox = Inbox()
    inbox.streaming = True
    catch_up = inbox.begin_catch_up()
    inbox.add_push(msg(3))  # arrives before the fetch reply
    assert inbox.add_page(catch_up, [msg(1), msg(2), msg(3)], unread=0)
    inbox.add_push(msg(4))
    items = await drain(inbox, 5)
    assert items == [msg(1), msg(2), msg(3), msg(3), msg(4)]  # the 2nd msg(3) is deduped later


async def test_page_with_more_unread_ends_with_a_marker_and_keeps_holding_pushes() -> None:
    inbox = Inbox()
    inbox.streaming = True
    catch_up = inbox.begin_catch_up()
    inbox.add_page(catch_up, [msg(1)], unread=5)
    inbox.add_push(msg(9))
    assert await drain(inbox, 2) == [msg(1), PageEnd(catch_up)]
    assert inbox.catching_up
    inbox.add_page(catch_up, [msg(2)], unread=0)
    assert await drain(inbox, 2) == [msg(2), msg(9)]
    assert not inbox.catching_up


async def test_a_page_from_an_older_catch_up_is_ignored() -> None:
    inbox = Inbox()
    inbox.streaming = True
    old = inbox.begin_catch_up()
    new = inbox.begin_catch_up()  # a reconnect started over
    assert not inbox.add_page(old, [msg(1)], unread=0)
    assert inbox.add_page(new, [msg(1), msg(2)], unread=0)
    assert await drain(inbox, 2) == [msg(1), msg(2)]


async def test_pushes_are_ignored_while_nobody_streams() -> None:
    inbox = Inbox()
    inbox.add_push(msg(1))
    inbox.end()
    assert await inbox.get() is None


async def test_fatal_error_ends_the_stream() -> None:
    inbox = Inbox()
    inbox.streaming = True
    inbox.fail(RuntimeError("account deleted"))
    try:
        await inbox.get()
    except RuntimeError as exc:
        assert "deleted" in str(exc)
    else:
        raise AssertionError("expected the stream to raise")
