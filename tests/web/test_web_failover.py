"""The page moves between instances and follows the session's end."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from playwright.async_api import Page, expect

from tests.procs import ROOT
from tests.web.conftest import NewPage, WebSet
from tests.web.pages import PASSWORD, DroppingRelay, bodies, open_with, register, send
from tests.wsclient import Peer

# Records every state the connection indicator shows, however briefly.
WATCH_STATES = """() => {
  window.seenStates = [];
  const indicator = document.getElementById("conn");
  new MutationObserver(() => window.seenStates.push(indicator.dataset.state))
    .observe(indicator, { attributes: true, childList: true, subtree: true });
}"""


async def seen_states(page: Page) -> list[str]:
    states: list[str] = await page.evaluate("window.seenStates")
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


async def test_sigkill_of_the_serving_instance_while_sending_20_delivers_each_once_in_order(
    web_set: WebSet, new_page: NewPage
) -> None:
    bob = await Peer.connect(web_set.servers[1].url)
    await bob.register_login("bob")
    alice = await new_page(web_set.page_url(0))
    await register(alice, "alice")
    await open_with(alice, "bob")
    await alice.evaluate(WATCH_STATES)
    expected = [f"message {i:02d}" for i in range(20)]
    for i, body in enumerate(expected):
        await send(alice, body)
        if i == 6:
            web_set.servers[0].kill()

    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent"] * 20, timeout=30000)
    await expect(alice.get_by_role("status")).to_have_text(
        f"Connected to 127.0.0.1:{web_set.servers[1].port}")
    assert await seen_states(alice) == ["reconnecting", "connected"]
    await expect(bodies(alice)).to_have_text(expected)
    messages = (await bob.ok("fetch", limit=100))["messages"]
    assert [m["body"] for m in messages] == expected


async def test_a_graceful_stop_moves_the_page_to_a_peer_at_once(
    web_set: WebSet, new_page: NewPage
) -> None:
    alice = await new_page(web_set.page_url(0))
    await register(alice, "alice")
    await alice.evaluate(WATCH_STATES)
    assert web_set.servers[0].stop() == 0
    await expect(alice.get_by_role("status")).to_have_text(
        f"Connected to 127.0.0.1:{web_set.servers[1].port}")
    assert await seen_states(alice) == ["reconnecting", "connected"]
    await open_with(alice, "alice")  # the session resumed on the peer
    await send(alice, "note to self after the move")
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent"])


async def test_deleting_the_account_ends_its_other_pages_and_erases_their_history(
    web_set: WebSet, new_page: NewPage
) -> None:
    first = await new_page(web_set.page_url(0))
    await register(first, "alice")
    await open_with(first, "alice")
    await send(first, "kept on this device")
    await expect(first.locator(".msg.mine .status")).to_have_text(["Sent"])
    second = await new_page(web_set.page_url(1))
    await second.get_by_role("textbox", name="Username").fill("alice")
    await second.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    await second.get_by_role("button", name="Log in").click()
    await expect(second.get_by_role("button", name="Log out")).to_be_visible()

    await first.get_by_role("button", name="Delete account").click()
    dialog = first.get_by_role("dialog", name="Delete your account?")
    await dialog.get_by_role("textbox", name="Password").fill("not the password")
    await dialog.get_by_role("button", name="Delete for good").click()
    await expect(dialog.get_by_role("alert")).to_have_text("That is not your password.")
    await dialog.get_by_role("textbox", name="Password").fill(PASSWORD)
    await dialog.get_by_role("button", name="Delete for good").click()

    await expect(first.get_by_role("alert")).to_have_text("Your account was deleted.")
    await expect(second.get_by_role("alert")).to_have_text(
        "Your account was deleted on another device.")
    await expect(second.get_by_role("button", name="Log in")).to_be_visible()
    names = await first.evaluate("indexedDB.databases().then(l => l.map(d => d.name))")
    assert "chat-alice" not in names


async def test_session_ended_returns_to_the_login_form_with_the_reason(
    web_set: WebSet, new_page: NewPage
) -> None:
    relay = DroppingRelay()
    alice = await new_page(web_set.page_url(0), relay=relay)
    await register(alice, "alice")
    relay.inject('{"event": "session_ended", "reason": "password_changed"}')
    await expect(alice.get_by_role("alert")).to_have_text(
        "Your password was changed; log in with the new one.")
    await expect(alice.get_by_role("button", name="Log in")).to_be_visible()
    await alice.reload()  # the token is forgotten: no resume
    await expect(alice.get_by_role("button", name="Log in")).to_be_visible()


async def test_a_logout_everywhere_from_the_cli_ends_the_page_and_returns_it_to_the_login_form(
    web_set: WebSet, new_page: NewPage
) -> None:
    alice = await new_page(web_set.page_url(0))
    await register(alice, "alice")
    # The real thing, no relay: another device (the CLI, through the other
    # instance) ends every session of alice; the note crosses instances.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client", "--url", web_set.servers[1].url,
        "logout", "alice", "--everywhere", cwd=ROOT,
        env={**os.environ, "CHAT_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await cli.communicate()
    assert cli.returncode == 0, output.decode()
    await expect(alice.get_by_role("alert")).to_have_text(
        "You were logged out on another device.")
    await expect(alice.get_by_role("button", name="Log in")).to_be_visible()
    await expect(alice.get_by_role("button", name="Log out")).to_have_count(0)
    await alice.reload()  # the token is forgotten: no resume
    await expect(alice.get_by_role("button", name="Log in")).to_be_visible()


async def test_log_out_forgets_the_token_and_log_in_brings_the_history_back(
    web_set: WebSet, new_page: NewPage
) -> None:
    alice = await new_page(web_set.page_url(0))
    await register(alice, "alice")
    await open_with(alice, "alice")
    await send(alice, "still here after logging out")
    await expect(alice.locator(".msg.mine .status")).to_have_text(["Sent"])
    await alice.get_by_role("button", name="Log out").click()
    await expect(alice.get_by_role("alert")).to_have_text("You logged out.")
    await alice.reload()
    await expect(alice.get_by_role("button", name="Log in")).to_be_visible()
    await alice.get_by_role("textbox", name="Username").fill("alice")
    await alice.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    await alice.get_by_role("button", name="Log in").click()
    await alice.get_by_role("list", name="Conversations").get_by_role(
        "button", name="alice", exact=True).click()
    await expect(bodies(alice)).to_have_text(
        [re.compile("still here after logging out")] * 1)
