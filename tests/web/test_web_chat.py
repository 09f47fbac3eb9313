"""Two people chatting in the page: live, offline, across reloads."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.web.conftest import NewPage, WebSet
from tests.web.pages import bodies, conversations, open_with, register, send


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
