"""The page's HTTP side on a real instance: files, headers, Origin checks."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.web.conftest import NewPage, WebSet

FOREIGN_PAGE = "<!doctype html><title>elsewhere</title><p>a page of another site</p>"

OPEN_WS = """url => new Promise(resolve => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
})"""


async def raw_get(server: ServerProc, target: str, headers: str = "") -> tuple[str, bytes]:
    """The status line and body of GET target, sent byte for byte (no URL normalising)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                 f"{headers}\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


async def test_a_foreign_origin_is_refused_the_handshake_with_403(
    web_set: WebSet, start_server: StartServer, redis_url: str
) -> None:
    server = web_set.servers[0]
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    for allowed in (server.http_url, web_set.servers[1].http_url, None):
        async with connect(server.url, origin=allowed) as ws:  # type: ignore[arg-type]
            await ws.send('{"op": "fetch", "id": 1}')
            assert '"unauthenticated"' in str(await ws.recv())
    listed = start_server("--allowed-origins", "https://chat.example.org", redis_url=redis_url)
    async with connect(listed.url, origin="https://chat.example.org"):  # type: ignore[arg-type]
        pass
    with pytest.raises(InvalidStatus):
        await connect(listed.url, origin=server.http_url)  # type: ignore[arg-type]


async def test_a_page_of_another_site_cannot_open_the_websocket(
    web_set: WebSet, new_page: NewPage
) -> None:
    page = await new_page(web_set.page_url(0))
    ws_url = web_set.servers[0].url
    assert await page.evaluate(OPEN_WS, ws_url) == "open"

    # Another site on this host, served for real (a routed page would be a
    # "public" one that the browser's local network checks refuse before
    # the handshake): only the server's Origin check can refuse it.
    async def other_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(FOREIGN_PAGE), FOREIGN_PAGE.encode()))
        await writer.drain()
        writer.close()

    site = await asyncio.start_server(other_site, "127.0.0.1", 0)
    port = site.sockets[0].getsockname()[1]
    try:
        await page.goto(f"http://127.0.0.1:{port}/")
        assert await page.evaluate(OPEN_WS, ws_url) == "refused"
    finally:
        site.close()
    assert f"refused /ws from origin ['http://127.0.0.1:{port}']" in web_set.servers[0].log()


async def test_the_page_loads_under_its_policy_without_violations(
    web_set: WebSet, new_page: NewPage
) -> None:
    page = await new_page(web_set.page_url(0))
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.reload()
    await page.get_by_role("status").filter(has_text="Connected").wait_for()
    assert problems == []
    # An injected inline script is blocked by the policy, not run.
    ran = await page.evaluate("""() => {
      const s = document.createElement("script");
      s.textContent = "window.injected = true";
      document.body.append(s);
      return window.injected === true;
    }""")
    assert ran is False


async def test_get_root_serves_the_page_with_security_headers_and_validators(
    web_set: WebSet,
) -> None:
    server = web_set.servers[0]
    head, body = await raw_get(server, "/")
    assert head.startswith("HTTP/1.1 200")
    assert b'<script type="module" src="/js/main.js">' in body
    lower = head.lower()
    assert "content-type: text/html; charset=utf-8" in lower
    assert "x-content-type-options: nosniff" in lower
    assert "content-security-policy: default-src 'self'" in lower
    assert "frame-ancestors 'none'" in lower
    assert f"ws://127.0.0.1:{web_set.servers[1].port}" in lower  # connect-src names the peer
    etag = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                if line.lower().startswith("etag:"))
    head, body = await raw_get(server, "/", f"If-None-Match: {etag}\r\n")
    assert head.startswith("HTTP/1.1 304") and body == b""
    head, _ = await raw_get(server, "/js/main.js")
    assert "content-type: text/javascript; charset=utf-8" in head.lower()
    head, _ = await raw_get(server, "/style.css")
    assert "content-type: text/css; charset=utf-8" in head.lower()


@pytest.mark.parametrize("target", [
    "/../server/app.py", "/%2e%2e/server/app.py", "/js/..%2f..%2fserver/app.py",
    "/js/%2E%2E/%2E%2E/README.md", "/..%5cserver%5capp.py", "/%252e%252e/server/app.py",
    "//etc/passwd", "/.%2e/requirements.txt", "/js/", "/js", "/.hidden", "/index.html%00.js",
    "/nothing-here.html", "/%ff.js",
])
async def test_paths_outside_the_web_files_are_404(web_set: WebSet, target: str) -> None:
    head, body = await raw_get(web_set.servers[0], target)
    assert head.startswith("HTTP/1.1 404"), (target, head)
    assert body == b"not found\n"
