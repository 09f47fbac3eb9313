"""What a person does in the page, by the accessible names the issue fixes."""

from __future__ import annotations

import json

from playwright.async_api import Locator, Page, WebSocketRoute, expect

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


class DroppingRelay:
    """Stands between the page and the server (playwright's WebSocket route).

    drop_sends: `send` requests from the page vanish (no reply: the page sees
    them unconfirmed). dedupe_window_ms: written into login/resume replies, as
    a server with that window would announce it.
    """

    def __init__(self, *, dedupe_window_ms: int | None = None) -> None:
        self.drop_sends = False
        self.dedupe_window_ms = dedupe_window_ms
        self.pages: list[WebSocketRoute] = []

    def inject(self, frame: str) -> None:
        """A frame as if from the server, to the page's latest connection."""
        self.pages[-1].send(frame)

    def route(self, ws: WebSocketRoute) -> None:
        self.pages.append(ws)
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if self.drop_sends and isinstance(message, str) and '"op":"send"' in message:
                return
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if self.dedupe_window_ms is not None and isinstance(message, str):
                frame = json.loads(message)
                if frame.get("ok") and "unread" in frame and "username" in frame:
                    frame["dedupe_window_ms"] = self.dedupe_window_ms
                    message = json.dumps(frame)
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)
