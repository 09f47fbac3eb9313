"""Real Chromium (Debian's, via playwright's executable_path) on real servers.

playwright cannot download its own browser here, so the tests drive the
system `chromium`. Without one they skip with one line saying how to get it,
except when CHAT_REQUIRE_BROWSER=1 (CI), where a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import StartServer
from tests.procs import ServerProc, free_port
from tests.web.pages import DroppingRelay

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOW_TO_GET = ("browser tests skipped: no chromium found; `apt-get install chromium` "
              "(or set CHAT_CHROMIUM=/path/to/chromium)")


def chromium_path() -> str | None:
    """CHAT_CHROMIUM when set (even to nothing usable), else a chromium on this machine."""
    chosen = os.environ.get("CHAT_CHROMIUM")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        if os.environ.get("CHAT_REQUIRE_BROWSER") == "1":
            pytest.fail(HOW_TO_GET.replace("skipped", "required (CHAT_REQUIRE_BROWSER=1)"))
        pytest.skip(HOW_TO_GET)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class WebSet:
    """Instances that name each other in --public-urls, over one Redis."""

    servers: list[ServerProc]

    def page_url(self, index: int) -> str:
        return self.servers[index].http_url + "/"


@pytest.fixture
def web_set(redis_url: str, start_server: StartServer) -> WebSet:
    ports = [free_port(), free_port()]
    public = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    servers = [start_server("--port", str(p), "--public-urls", public, redis_url=redis_url,
                            name=f"web-{i}") for i, p in enumerate(ports)]
    return WebSet(servers=servers)


class NewPage(Protocol):
    async def __call__(self, url: str, *, width: int = 1100, height: int = 760,
                       relay: DroppingRelay | None = None) -> Page: ...


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """new_page(url, width=..., height=..., relay=...) -> a page in a fresh context.

    Each context has its own storage (a device of its own). A relay routes
    the page's WebSockets from the first one on.
    """
    contexts: list[BrowserContext] = []

    async def make(url: str, *, width: int = 1100, height: int = 760,
                   relay: DroppingRelay | None = None) -> Page:
        context = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = await context.new_page()
        if relay is not None:
            await page.route_web_socket(re.compile(r".*/ws$"), relay.route)
        await page.goto(url)
        return page

    yield make
    for context in contexts:
        await context.close()
