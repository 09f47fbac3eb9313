"""Which browser origins may open /ws, and which URLs the page may move to.

Pure functions over the settings and the handshake's headers (no I/O), so
the rules are unit-tested without a server. A browser always sends
`Origin` on a WebSocket handshake; a request without one is a non-browser
client (the CLI, a bot) and is accepted (PROTOCOL.md, HTTP).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL, lower-case, default port left out.

    Raises ValueError for anything that is not an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port  # raises ValueError for a bad port
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_url_list(value: str | None) -> list[str]:
    """The origins of a comma-separated URL list, in order, without repeats."""
    out: list[str] = []
    for item in (value or "").split(","):
        if item.strip():
            origin = origin_of(item)
            if origin not in out:
                out.append(origin)
    return out


def ws_url(origin: str) -> str:
    """The /ws URL of an instance whose page lives at `origin`."""
    scheme, rest = origin.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


def own_origin(host_header: str | None, *, tls: bool) -> str | None:
    """The origin the page was served from, as the browser names it (Host header)."""
    if not host_header:
        return None
    try:
        return origin_of(f"{'https' if tls else 'http'}://{host_header}")
    except ValueError:
        return None


def configured_origins(*, public_urls: str | None, allowed: str | None) -> frozenset[str]:
    """--allowed-origins, or by default the origins of --public-urls (the peers)."""
    return frozenset(parse_url_list(allowed) if allowed else parse_url_list(public_urls))


def origin_allowed(origin_headers: list[str], configured: frozenset[str],
                   own: str | None) -> bool:
    """True for no Origin (not a browser), or exactly one Origin that is the
    instance's own (`own`, from the Host header) or a configured one."""
    if not origin_headers:
        return True
    if len(origin_headers) != 1:
        return False
    try:
        origin = origin_of(origin_headers[0])
    except ValueError:
        return False  # "null" (sandboxed frames, file://) and junk
    return origin == own or origin in configured
