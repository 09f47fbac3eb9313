"""server/wire/origins.py: who may open /ws from a browser."""

from __future__ import annotations

import pytest

from server.wire import origins

NONE: frozenset[str] = frozenset()


def test_a_request_without_origin_is_a_non_browser_client_and_accepted() -> None:
    assert origins.origin_allowed([], NONE, None) is True


def test_by_default_the_own_origin_and_the_peers_are_allowed() -> None:
    peers = origins.configured_origins(
        public_urls="http://127.0.0.1:8765/, http://127.0.0.1:8766", allowed=None)
    own = "http://127.0.0.1:8765"
    assert origins.origin_allowed(["http://127.0.0.1:8765"], peers, own)
    assert origins.origin_allowed(["http://127.0.0.1:8766"], peers, own)
    assert not origins.origin_allowed(["http://127.0.0.1:8767"], peers, own)
    assert not origins.origin_allowed(["https://127.0.0.1:8766"], peers, own)
    assert not origins.origin_allowed(["http://evil.example"], peers, own)


def test_allowed_origins_replace_the_peers_but_keep_the_own_origin() -> None:
    listed = origins.configured_origins(public_urls="http://10.0.0.2:8765",
                                        allowed="https://chat.example.org")
    assert listed == {"https://chat.example.org"}
    own = "http://10.0.0.1:8765"
    assert origins.origin_allowed([own], listed, own)
    assert origins.origin_allowed(["https://chat.example.org"], listed, own)
    assert not origins.origin_allowed(["http://10.0.0.2:8765"], listed, own)


@pytest.mark.parametrize("origin", ["null", "", "chat.example.org", "ftp://a.example",
                                    "http://", "http://a:notaport"])
def test_junk_and_null_origins_are_refused(origin: str) -> None:
    assert not origins.origin_allowed([origin], frozenset({"http://a.example"}), None)


def test_two_origin_headers_are_refused() -> None:
    ok = frozenset({"http://a.example"})
    assert not origins.origin_allowed(["http://a.example", "http://a.example"], ok, None)


def test_origins_compare_without_case_or_default_ports() -> None:
    assert origins.origin_of("HTTPS://Chat.Example.ORG:443/path") == "https://chat.example.org"
    assert origins.origin_of("http://[::1]:80") == "http://[::1]"
    assert origins.origin_allowed(["http://CHAT.example.org:80"],
                                  frozenset({"http://chat.example.org"}), None)


def test_own_origin_follows_the_host_header_and_tls() -> None:
    assert origins.own_origin("127.0.0.1:8765", tls=False) == "http://127.0.0.1:8765"
    assert origins.own_origin("chat.example.org", tls=True) == "https://chat.example.org"
    assert origins.own_origin(None, tls=False) is None
    assert origins.own_origin("bad host:x", tls=False) is None


def test_ws_url_matches_the_page_scheme() -> None:
    assert origins.ws_url("https://chat.example.org") == "wss://chat.example.org/ws"
    assert origins.ws_url("http://127.0.0.1:8766") == "ws://127.0.0.1:8766/ws"
