"""Two people chatting in the page: live, offline, across reloads."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from tests.web.conftest import NewPage, WebSet
from tests.web.pages import (
    PASSWORD,
    DroppingRelay,
    bodies,
    conversation_log,
    conversations,
    log_in,
    open_with,
    register,
    send,
)
from tests.wsclient import Peer


async def test_two_users_on_two_instances_chat_live_both_ways(
    web_set: WebSet, new_page: NewPage
) -> None:
    alice = await new_page(web_set.page_url(0))
    bob = await new_page(web_set.page_url(1))
    await register(alice, "alice")
    await register(bob, "bob")
    await expect(alice.get_by_role("status")).to_have_text(re.compile(
        f"Connected to 127.0.0.1:{web_set.servers[0].port}"))
    await expect(bob.get_by_role("status")).to_have_text(re.compile(
        f"Connected to 127.0.0.1:{web_set.servers[1].port}"))

    await open_with(alice, "bob")
    await send(alice, "hi bob, from the first instance")
    await expect(bob.get_by_role("list", name="Conversations").get_by_role(
        "button", name="alice", exact=True)).to_be_visible()
    await conversations(bob).get_by_role("button", name="alice", exact=True).click()
    await expect(bodies(bob)).to_have_text(["hi bob, from the first instance"])

    await send(bob, "hello alice, from the second")
    await expect(bodies(alice)).to_have_text(
        ["hi bob, from the first instance", "hello alice, from the second"])
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent"])


async def test_messages_sent_while_away_show_at_login_with_an_unread_badge(
    web_set: WebSet, new_page: NewPage
) -> None:
    bob = await new_page(web_set.page_url(1))
    await register(bob, "bob")
    await bob.get_by_role("button", name="Log out").click()
    alice = await Peer.connect(web_set.servers[0].url)
    await alice.register_login("alice")
    await alice.send_message("bob", "first, while you were away")
    await alice.send_message("bob", "second, while you were away")

    await log_in(bob, "bob")
    entry = conversations(bob).get_by_role("button", name="alice", exact=True)
    await expect(entry).to_have_accessible_description(
        re.compile("2 unread.*second, while you were away"))
    await expect(entry.locator(".badge")).to_have_text("2")
    await entry.click()
    await expect(bodies(bob)).to_have_text(
        ["first, while you were away", "second, while you were away"])
    await expect(entry.locator(".badge")).to_have_count(0)
    # Stored on the device, so acked: the server's inbox is empty.
    bob_raw = await Peer.connect(web_set.servers[0].url)
    await bob_raw.ok("login", username="bob", password=PASSWORD)
    assert (await bob_raw.ok("fetch"))["messages"] == []


async def test_reload_keeps_session_history_and_unconfirmed_sends_which_go_out_once(
    web_set: WebSet, new_page: NewPage
) -> None:
    bob = await Peer.connect(web_set.servers[1].url)
    await bob.register_login("bob")
    relay = DroppingRelay()
    alice = await new_page(web_set.page_url(0), relay=relay)
    await register(alice, "alice")
    await open_with(alice, "bob")
    await send(alice, "stored before the reload")
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent"])
    relay.drop_sends = True
    await send(alice, "unconfirmed across the reload")
    pending = alice.locator(".msg.mine").last
    await expect(pending.locator(".status")).to_have_text("Sending…")
    msg_id = await pending.get_attribute("data-msg-id")

    await alice.reload()
    # No password asked: the token resumes; history and the pending send are local.
    await expect(alice.get_by_role("button", name="Log out")).to_be_visible()
    await conversations(alice).get_by_role("button", name="bob", exact=True).click()
    await expect(bodies(alice)).to_have_text(
        ["stored before the reload", "unconfirmed across the reload"])
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent", "Sending…"])

    relay.drop_sends = False
    await alice.reload()
    await conversations(alice).get_by_role("button", name="bob", exact=True).click()
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent", "Sent"])
    messages = (await bob.ok("fetch"))["messages"]
    assert [(m["body"], m["msg_id"]) for m in messages][1:] == [
        ("unconfirmed across the reload", msg_id)]
    assert len(messages) == 2


async def test_a_send_past_the_dedupe_window_is_unconfirmed_and_retry_uses_a_new_msg_id(
    web_set: WebSet, new_page: NewPage
) -> None:
    bob = await Peer.connect(web_set.servers[1].url)
    await bob.register_login("bob")
    # A server announcing a 3 s window (today's server may not announce one).
    relay = DroppingRelay(dedupe_window_ms=3000)
    alice = await new_page(web_set.page_url(0), relay=relay)
    await register(alice, "alice")
    await open_with(alice, "bob")
    relay.drop_sends = True
    await send(alice, "too late to resend")
    first_id = await alice.locator(".msg.mine").last.get_attribute("data-msg-id")
    await asyncio.sleep(3.5)
    relay.drop_sends = False
    await alice.reload()
    await conversations(alice).get_by_role("button", name="bob", exact=True).click()
    mine = alice.locator(".msg.mine")
    await expect(mine.locator(".status")).to_have_text(["Unconfirmed"])
    assert (await bob.ok("fetch"))["messages"] == []  # never resent on its own

    await mine.get_by_role("button", name="Retry").click()
    await expect(mine.locator(".status")).to_have_text(["Sent"])
    second_id = await mine.get_attribute("data-msg-id")
    assert second_id != first_id
    messages = (await bob.ok("fetch"))["messages"]
    assert [(m["body"], m["msg_id"]) for m in messages] == [("too late to resend", second_id)]


async def test_message_bodies_render_as_text_never_as_markup(
    web_set: WebSet, new_page: NewPage
) -> None:
    hostile = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>",
               '"><svg onload=alert(3)>', "&lt;b&gt;entity&lt;/b&gt;"]
    bob = await new_page(web_set.page_url(1))
    dialogs: list[str] = []
    bob.on("dialog", lambda d: dialogs.append(d.message))
    await register(bob, "bob")
    alice = await Peer.connect(web_set.servers[0].url)
    await alice.register_login("alice")
    for body in hostile:
        await alice.send_message("bob", body)
    await conversations(bob).get_by_role("button", name="alice", exact=True).click()
    await expect(bodies(bob)).to_have_text(hostile)
    log = conversation_log(bob)
    assert await log.locator("img, script, svg, b").count() == 0
    await expect(conversations(bob).locator(".last")).to_have_text([hostile[-1]])
    assert dialogs == []


async def test_at_phone_width_the_page_fits_and_every_control_is_usable(
    web_set: WebSet, new_page: NewPage
) -> None:
    alice = await Peer.connect(web_set.servers[0].url)
    await alice.register_login("alice")
    phone = await new_page(web_set.page_url(1), width=375, height=667)
    await register(phone, "bob")
    await open_with(phone, "alice")
    await send(phone, "typed on a phone " + "long words " * 30)
    await expect(phone.locator(".msg.mine .status")).to_have_text(["Sent"])
    for name in ("Send", "Log out", "Delete account", "Back to conversations"):
        await expect(phone.get_by_role("button", name=name)).to_be_in_viewport()
    assert await phone.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth") is True
    await phone.get_by_role("button", name="Back to conversations").click()
    await expect(conversations(phone).get_by_role("button", name="alice", exact=True)
                 ).to_be_in_viewport()
    assert await phone.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth") is True
    assert (await alice.event())["message"]["from"] == "bob"


async def test_keyboard_alone_registers_finds_a_user_and_sends(
    web_set: WebSet, new_page: NewPage
) -> None:
    bob = await Peer.connect(web_set.servers[1].url)
    await bob.register_login("bob")
    page = await new_page(web_set.page_url(0))
    keys = page.keyboard
    await expect(page.get_by_role("textbox", name="Username")).to_be_focused()
    await keys.type("alice")
    for secret in (PASSWORD, PASSWORD):
        await keys.press("Tab")
        await keys.type(secret)
    await keys.press("Enter")  # in "Repeat password": Register
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()

    async def tab_to(name: str, role: str) -> None:
        target = page.get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
        for _ in range(15):
            await keys.press("Tab")
            if await target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"Tab never reached {role} {name!r}")

    await tab_to("Find users", "searchbox")
    await keys.type("bo")
    await expect(page.get_by_role("list", name="Search results").get_by_role(
        "button", name="bob", exact=True)).to_be_visible()
    await tab_to("bob", "button")
    await keys.press("Enter")
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await keys.type("sent by keyboard alone")
    await keys.press("Enter")
    await expect(page.locator(".msg.mine .status")).to_have_text(["Sent"])
    assert (await bob.event())["message"]["body"] == "sent by keyboard alone"
