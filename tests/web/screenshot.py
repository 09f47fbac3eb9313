"""Take the README's screenshots from the real page: `python -m tests.web.screenshot`.

Starts a Redis and two instances on free ports, lets alice and bob chat in
Chromium, writes docs/web-desktop.png and docs/web-phone.png, stops all.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from tests.procs import ROOT, TEST_ENV, RedisNode, ServerProc, free_port
from tests.web.conftest import CHROMIUM_ARGS, chromium_path
from tests.web.pages import bodies, conversations, open_with, register, send

DOCS = ROOT / "docs"


async def chat(alice: Page, bob: Page, carol: Page) -> None:
    await register(alice, "alice")
    await register(bob, "bob")
    await register(carol, "carol")
    await open_with(carol, "alice")
    await send(carol, "Lunch on Friday?")
    await open_with(alice, "bob")
    await send(alice, "Hi Bob! Did the failover drill go well?")
    await conversations(bob).get_by_role("button", name="alice", exact=True).click()
    await send(bob, "It did: I killed the instance I was on and the page moved to the other one.")
    await send(bob, "Not a message lost, none twice.")
    await expect(bodies(alice)).to_have_count(3)
    await send(alice, "Great, <b>markup</b> stays plain text too.")
    await expect(bodies(bob)).to_have_count(4)
    await expect(alice.locator(".msg.mine .status").last).to_have_text("Sent")


async def main(out: Path) -> None:
    path = chromium_path()
    if path is None:
        sys.exit("no chromium found; apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        node = RedisNode(datadir=Path(tmp) / "redis", port=free_port())
        node.start()
        servers: list[ServerProc] = []
        try:
            ports = [free_port(), free_port()]
            public = ",".join(f"http://127.0.0.1:{p}" for p in ports)
            for i, port in enumerate(ports):
                servers.append(ServerProc(
                    args=["--host", "127.0.0.1", "--port", str(port), "--redis-url", node.url,
                          "--public-urls", public, "--instance-id", f"shot-{i}"],
                    logdir=Path(tmp), name=f"shot-{i}", env=TEST_ENV).start())
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
                desk = await browser.new_context(viewport={"width": 1100, "height": 640},
                                                 device_scale_factor=1)
                phone = await browser.new_context(viewport={"width": 375, "height": 667},
                                                  device_scale_factor=2, is_mobile=True)
                other = await browser.new_context()
                alice = await desk.new_page()
                bob = await phone.new_page()
                carol = await other.new_page()
                await alice.goto(servers[0].http_url + "/")
                await bob.goto(servers[1].http_url + "/")
                await carol.goto(servers[1].http_url + "/")
                await chat(alice, bob, carol)
                await alice.get_by_label("Message").fill("Next: the phone layout")
                await alice.screenshot(path=out / "web-desktop.png")
                await bob.screenshot(path=out / "web-phone.png")
                await browser.close()
        finally:
            for server in servers:
                server.stop()
            node.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS))
