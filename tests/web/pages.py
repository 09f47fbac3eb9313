"""What a person does in the page, by the accessible names the issue fixes."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

PASSWORD = "correct horse battery"


async def register(page: Page, name: str, password: str = PASSWORD) -> None:
    await page.get_by_label("Username").fill(name)
    await page.get_by_role("textbox", name="Password", exact=True).fill(password)
    await page.get_by_label("Repeat password").fill(password)
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=15000)


async def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    await page.get_by_label("Username").fill(name)
    await page.get_by_role("textbox", name="Password", exact=True).fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=15000)


def conversations(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversations")


def conversation_log(page: Page) -> Locator:
    return page.get_by_role("log", name="Conversation")


async def open_with(page: Page, peer: str) -> None:
    """Find `peer` with the search box and open the conversation."""
    await page.get_by_label("Find users").fill(peer)
    await page.get_by_role("list", name="Search results").get_by_role(
        "button", name=peer, exact=True).click()
    await expect(page.get_by_role("heading", name=peer, exact=True)).to_be_visible()


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    await box.fill(text)
    await box.press("Enter")


def bodies(page: Page) -> Locator:
    return conversation_log(page).locator(".msg .body")


def connection(page: Page) -> Locator:
    return page.get_by_role("status")
