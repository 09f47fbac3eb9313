"""server/wire/client_address.py: who the client is behind (or without) a trusted proxy."""

from __future__ import annotations

import pytest

from server.wire.client_address import allowed, client_address, limit_key, parse_networks

PROXY = parse_networks("10.0.0.0/8,::1/128")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert client_address("203.0.113.5", ["198.51.100.1"], ()) == "203.0.113.5"


def test_an_untrusted_peer_cannot_pick_its_address_with_the_header() -> None:
    assert client_address("203.0.113.5", ["198.51.100.1"], PROXY) == "203.0.113.5"


def test_behind_a_trusted_proxy_the_right_most_entry_is_the_client() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], PROXY) == "198.51.100.1"


def test_what_a_client_prepends_to_the_header_is_ignored() -> None:
    header = ["6.6.6.6, 7.7.7.7, 198.51.100.1"]
    assert client_address("10.0.0.2", header, PROXY) == "198.51.100.1"


def test_trusted_proxies_in_the_chain_are_skipped_from_the_right() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1, 10.1.1.1, 10.2.2.2"], PROXY) \
        == "198.51.100.1"


def test_several_headers_read_as_one_list_in_order() -> None:
    assert client_address("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.1.1.1"], PROXY) \
        == "198.51.100.1"


@pytest.mark.parametrize("bad", ["unknown", "", "1.2.3", "198.51.100.1:x", "[::1", "fe80::1%eth0"])
def test_a_malformed_entry_on_the_way_falls_back_to_the_peer(bad: str) -> None:
    assert client_address("10.0.0.2", [f"198.51.100.1, {bad}"], PROXY) == "10.0.0.2"


def test_a_malformed_entry_left_of_the_client_changes_nothing() -> None:
    assert client_address("10.0.0.2", ["garbage, 198.51.100.1"], PROXY) == "198.51.100.1"


def test_no_header_from_a_trusted_proxy_leaves_the_peer() -> None:
    assert client_address("10.0.0.2", [], PROXY) == "10.0.0.2"


def test_a_chain_of_trusted_proxies_only_gives_the_furthest() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 10.1.1.1"], PROXY) == "10.9.9.9"


@pytest.mark.parametrize(("entry", "address"), [
    ("198.51.100.1:4711", "198.51.100.1"),
    ("[2001:db8::7]", "2001:db8::7"),
    ("[2001:db8::7]:443", "2001:db8::7"),
    (" 2001:DB8::7 ", "2001:db8::7"),
    ("::ffff:198.51.100.1", "198.51.100.1"),
])
def test_entries_with_ports_brackets_or_ipv4_mapped_form_name_the_address(
    entry: str, address: str
) -> None:
    assert client_address("10.0.0.2", [entry], PROXY) == address


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert client_address("::ffff:10.0.0.2", ["198.51.100.1"], PROXY) == "198.51.100.1"
    assert client_address("::ffff:203.0.113.5", [], ()) == "203.0.113.5"


def test_ipv6_addresses_count_by_their_64_prefix() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::2") \
        == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")


def test_ipv4_addresses_count_alone_and_mapped_ones_as_ipv4() -> None:
    assert limit_key("198.51.100.1") == "198.51.100.1"
    assert limit_key("::ffff:198.51.100.1") == "198.51.100.1"


def test_a_name_that_is_no_address_counts_as_itself() -> None:
    assert limit_key("unknown") == "unknown"


def test_operator_addresses_are_judged_by_network() -> None:
    admin = parse_networks("127.0.0.1/32,::1/128")
    assert allowed("127.0.0.1", admin)
    assert allowed("::1", admin)
    assert not allowed("127.0.0.2", admin)
    assert not allowed("unknown", admin)


def test_a_network_list_names_its_bad_entry() -> None:
    with pytest.raises(ValueError, match="'nginx'"):
        parse_networks("10.0.0.0/8, nginx")
    assert parse_networks(" , ") == ()
