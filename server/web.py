"""GET / and the files of web/: the web client, served on the same port as /ws.

Only regular files under web/ with a known type are served; any other path
(traversal, encoded or not, hidden files, directories, unknown types) is
404. Every response carries the security headers (CSP, nosniff, no
framing) and every file an ETag and Last-Modified so browsers revalidate
cheaply (304). `/config.json` tells the page the /ws URLs of this instance
and its peers (--public-urls), so it can move when its instance goes away.
"""

from __future__ import annotations

import email.utils
import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from server.wire import origins

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True)
class _File:
    mtime_ns: int
    size: int
    body: bytes
    etag: str
    last_modified: str


def security_headers(connect_src: list[str]) -> list[tuple[str, str]]:
    """Headers on every page response: nothing but our own files, no framing."""
    csp = "; ".join([
        "default-src 'self'",
        "connect-src " + " ".join(["'self'", *connect_src]),
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return [
        ("Content-Security-Policy", csp),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),  # frame-ancestors for old browsers
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]


def safe_relative_path(raw_path: str) -> str | None:
    """The decoded path below the web root, or None when it may leave it.

    Rejects `..`, `.`, empty and hidden segments, backslashes and NUL, after
    percent-decoding (so `%2e%2e/` and `..%2f` are refused like `../`).
    """
    path = raw_path.partition("?")[0].partition("#")[0]
    if path == "/":
        return "index.html"
    decoded = unquote(path, errors="strict") if "%" in path else path
    if not decoded.startswith("/") or "\\" in decoded or "\x00" in decoded:
        return None
    segments = decoded[1:].split("/")
    if any(not s or s.startswith(".") for s in segments):
        return None
    return "/".join(segments)


class WebFiles:
    """Answers the page's HTTP requests; None for paths that are not the page's."""

    def __init__(self, *, root: Path = WEB_ROOT, public_urls: str | None = None,
                 tls: bool = False) -> None:
        self.root = root.resolve()
        self.tls = tls
        self.peers = origins.parse_url_list(public_urls)
        self._cache: dict[Path, _File] = {}

    def respond(self, request: Request) -> Response:
        own = origins.own_origin(request.headers.get("Host"), tls=self.tls)
        connect_src = [origins.ws_url(o).removesuffix("/ws") for o in [own, *self.peers] if o]
        headers = security_headers(sorted(set(connect_src)))
        path = request.path.partition("?")[0]
        if path == "/config.json":
            return self._config(own, headers)
        try:
            relative = safe_relative_path(path)
        except UnicodeDecodeError:
            relative = None
        found = self._load(relative) if relative is not None else None
        if found is None:
            return _response(HTTPStatus.NOT_FOUND,
                             [*headers, ("Content-Type", "text/plain; charset=utf-8")],
                             b"not found\n")
        file, content_type = found
        headers += [("ETag", file.etag), ("Last-Modified", file.last_modified),
                    ("Cache-Control", "no-cache")]
        if _not_modified(request.headers, file):
            return _response(HTTPStatus.NOT_MODIFIED, headers, b"")
        return _response(HTTPStatus.OK, [*headers, ("Content-Type", content_type)], file.body)

    def _config(self, own: str | None, headers: list[tuple[str, str]]) -> Response:
        urls = [origins.ws_url(o) for o in dict.fromkeys([*([own] if own else []), *self.peers])]
        body = orjson.dumps({"ws_urls": urls, "peers": [origins.ws_url(o) for o in self.peers]})
        return _response(HTTPStatus.OK, [*headers, ("Content-Type", "application/json"),
                                          ("Cache-Control", "no-store")], body)

    def _load(self, relative: str) -> tuple[_File, str] | None:
        candidate = (self.root / relative).resolve()
        content_type = CONTENT_TYPES.get(candidate.suffix.lower())
        # resolve() follows symlinks, so a link out of web/ fails this check too.
        if content_type is None or not candidate.is_relative_to(self.root):
            return None
        try:
            stat = candidate.stat()
            if not candidate.is_file():
                return None
            cached = self._cache.get(candidate)
            if cached and (cached.mtime_ns, cached.size) == (stat.st_mtime_ns, stat.st_size):
                return cached, content_type
            body = candidate.read_bytes()
        except OSError:
            return None
        file = _File(
            mtime_ns=stat.st_mtime_ns, size=stat.st_size, body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
            last_modified=email.utils.formatdate(stat.st_mtime, usegmt=True),
        )
        self._cache[candidate] = file
        return file, content_type


def _not_modified(headers: Headers, file: _File) -> bool:
    """RFC 9110 13.1: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or file.etag in tags
    since = headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        when = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return int(file.mtime_ns // 1_000_000_000) <= when.timestamp()


def _response(status: HTTPStatus, headers: list[tuple[str, str]], body: bytes) -> Response:
    all_headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        *headers,
    ])
    if status != HTTPStatus.NOT_MODIFIED:
        all_headers["Content-Length"] = str(len(body))
    return Response(status.value, status.phrase, all_headers, body)
