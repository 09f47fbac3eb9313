"""server/origins.py: who may open /ws from a browser."""

from __future__ import annotations

import pytest

from server import origins


def allowed(**kwargs: str | None) -> set[str]:
    return origins.allowed_origins(
        own=kwargs.get("own"), public_urls=kwargs.get("public_urls"),
        allowed=kwargs.get("allowed"))


def test_a_request_without_origin_is_a_non_browser_client_and_accepted() -> None:
    assert origins.origin_allowed([], set()) is True


def test_by_default_the_own_origin_and_the_peers_are_allowed() -> None:
    ok = allowed(own="http://127.0.0.1:8765",
                 public_urls="http://127.0.0.1:8765/, http://127.0.0.1:8766")
    assert origins.origin_allowed(["http://127.0.0.1:8765"], ok)
    assert origins.origin_allowed(["http://127.0.0.1:8766"], ok)
    assert not origins.origin_allowed(["http://127.0.0.1:8767"], ok)
    assert not origins.origin_allowed(["https://127.0.0.1:8766"], ok)
    assert not origins.origin_allowed(["http://evil.example"], ok)


def test_allowed_origins_replace_the_peers_but_keep_the_own_origin() -> None:
    ok = allowed(own="http://10.0.0.1:8765", public_urls="http://10.0.0.2:8765",
                 allowed="https://chat.example.org")
    assert ok == {"http://10.0.0.1:8765", "https://chat.example.org"}


@pytest.mark.parametrize("origin", ["null", "", "chat.example.org", "ftp://a.example",
                                    "http://", "http://a:notaport"])
def test_junk_and_null_origins_are_refused(origin: str) -> None:
    assert not origins.origin_allowed([origin], {"http://a.example"})


def test_two_origin_headers_are_refused() -> None:
    ok = {"http://a.example"}
    assert not origins.origin_allowed(["http://a.example", "http://a.example"], ok)


def test_origins_compare_without_case_or_default_ports() -> None:
    assert origins.origin_of("HTTPS://Chat.Example.ORG:443/path") == "https://chat.example.org"
    assert origins.origin_of("http://[::1]:80") == "http://[::1]"
    assert origins.origin_allowed(["http://CHAT.example.org:80"], {"http://chat.example.org"})


def test_own_origin_follows_the_host_header_and_tls() -> None:
    assert origins.own_origin("127.0.0.1:8765", tls=False) == "http://127.0.0.1:8765"
    assert origins.own_origin("chat.example.org", tls=True) == "https://chat.example.org"
    assert origins.own_origin(None, tls=False) is None
    assert origins.own_origin("bad host:x", tls=False) is None


def test_ws_url_matches_the_page_scheme() -> None:
    assert origins.ws_url("https://chat.example.org") == "wss://chat.example.org/ws"
    assert origins.ws_url("http://127.0.0.1:8766") == "ws://127.0.0.1:8766/ws"
