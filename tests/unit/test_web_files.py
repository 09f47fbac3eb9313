"""server/web.py: only web/'s files, right types, validators, security headers."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path

import orjson
import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from server.web import WebFiles, safe_relative_path


def get(files: WebFiles, path: str, **headers: str) -> tuple[int, Headers, bytes]:
    request = Request(path, Headers({"Host": "127.0.0.1:8765", **{
        k.replace("_", "-"): v for k, v in headers.items()}}))
    response = files.respond(request)
    return response.status_code, response.headers, bytes(response.body)


@pytest.fixture
def site(tmp_path: Path) -> WebFiles:
    root = tmp_path / "web"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "js" / "main.js").write_text("export {};")
    (root / "style.css").write_text("body{}")
    (root / "notes.md").write_text("# not served")
    (root / ".secret.js").write_text("hidden")
    (tmp_path / "outside.js").write_text("outside")
    (root / "link.js").symlink_to(tmp_path / "outside.js")
    return WebFiles(root=root, public_urls="http://127.0.0.1:8765,https://b.example.org")


def test_root_serves_index_html_as_utf8_html(site: WebFiles) -> None:
    status, headers, body = get(site, "/")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert body == b"<!doctype html><title>t</title>"
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize(("path", "content_type"), [
    ("/js/main.js", "text/javascript; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/index.html?v=2", "text/html; charset=utf-8"),
])
def test_each_file_type_gets_its_content_type(site: WebFiles, path: str, content_type: str) -> None:
    status, headers, _ = get(site, path)
    assert (status, headers["Content-Type"]) == (200, content_type)


@pytest.mark.parametrize("path", [
    "/../outside.js", "/%2e%2e/outside.js", "/js/..%2F..%2Foutside.js", "/js/%2E%2E/index.html",
    "/..%5coutside.js", "/js\\..\\index.html", "//outside.js", "/.secret.js", "/%2esecret.js",
    "/link.js", "/notes.md", "/js", "/js/", "/missing.js", "/index.html%00", "/%C0%AE%C0%AE/x.js",
    "/%252e%252e/outside.js",
])
def test_anything_but_a_web_file_is_404_with_security_headers(site: WebFiles, path: str) -> None:
    status, headers, body = get(site, path)
    assert (status, body) == (404, b"not found\n"), path
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_safe_relative_path_keeps_plain_names_and_refuses_dot_segments() -> None:
    assert safe_relative_path("/") == "index.html"
    assert safe_relative_path("/js/main.js") == "js/main.js"
    assert safe_relative_path("/js/%6dain.js") == "js/main.js"
    for bad in ("/a/../b", "/./a", "/a//b", "/a%2f..%2fb", "/.git/config", "relative"):
        assert safe_relative_path(bad) is None, bad


def test_every_response_carries_csp_nosniff_and_no_framing(site: WebFiles) -> None:
    _, headers, _ = get(site, "/")
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'self'; ")
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect.split()[1:] == ["'self'", "ws://127.0.0.1:8765", "wss://b.example.org"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def test_a_matching_etag_answers_304_without_a_body(site: WebFiles) -> None:
    _, headers, _ = get(site, "/js/main.js")
    etag = headers["ETag"]
    assert etag.startswith('"') and headers["Cache-Control"] == "no-cache"
    status, again, body = get(site, "/js/main.js", If_None_Match=f'W/"x", {etag}')
    assert (status, body, again["ETag"]) == (304, b"", etag)
    assert get(site, "/js/main.js", If_None_Match='"other"')[0] == 200


def test_if_modified_since_answers_304_only_when_the_file_is_not_newer(site: WebFiles) -> None:
    _, headers, _ = get(site, "/style.css")
    modified = headers["Last-Modified"]
    assert get(site, "/style.css", If_Modified_Since=modified)[0] == 304
    earlier = email.utils.formatdate(
        email.utils.parsedate_to_datetime(modified).timestamp() - 60, usegmt=True)
    assert get(site, "/style.css", If_Modified_Since=earlier)[0] == 200
    assert get(site, "/style.css", If_Modified_Since="yesterday-ish")[0] == 200


def test_a_changed_file_gets_a_new_etag(site: WebFiles) -> None:
    first = get(site, "/js/main.js")[1]["ETag"]
    path = site.root / "js" / "main.js"
    path.write_text("export const changed = 1;")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    status, headers, body = get(site, "/js/main.js", If_None_Match=first)
    assert (status, body) == (200, b"export const changed = 1;")
    assert headers["ETag"] != first


def test_config_names_this_instance_and_its_peers_ws_urls(site: WebFiles) -> None:
    status, headers, body = get(site, "/config.json")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert orjson.loads(body) == {
        "ws_urls": ["ws://127.0.0.1:8765/ws", "wss://b.example.org/ws"],
        "peers": ["ws://127.0.0.1:8765/ws", "wss://b.example.org/ws"],
    }


def test_the_repositorys_web_directory_holds_the_page(tmp_path: Path) -> None:
    files = WebFiles()
    for path in ("/", "/js/main.js", "/style.css", "/icon.svg"):
        assert get(files, path)[0] == 200, path


def test_over_tls_the_page_may_connect_only_to_wss(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    files = WebFiles(root=tmp_path, public_urls="https://b.example.org", tls=True)
    _, headers, _ = get(files, "/")
    connect = next(d for d in headers["Content-Security-Policy"].split("; ")
                   if d.startswith("connect-src"))
    assert connect == "connect-src 'self' wss://127.0.0.1:8765 wss://b.example.org"
    body = orjson.loads(get(files, "/config.json")[2])
    assert body["ws_urls"] == ["wss://127.0.0.1:8765/ws", "wss://b.example.org/ws"]
