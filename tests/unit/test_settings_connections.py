"""Settings of where to connect and listen: one Redis or a Sentinel set, TLS cert and
key, the port, public URLs and origins, network lists; a bad one exits with one line.
"""

from __future__ import annotations

import pytest

from server.__main__ import load_settings
from tests.unit.settings_load import URL, fails


def test_sentinel_addresses_are_parsed_into_host_port_pairs() -> None:
    settings = load_settings(["--sentinel", "10.0.0.1:26379, 10.0.0.2:26380,h3:1"], {})
    assert settings.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 1)]
    assert settings.sentinel_master == "chat"


def test_sentinel_master_can_be_renamed() -> None:
    settings = load_settings(["--sentinel", "h:1", "--sentinel-master", "mymaster"], {})
    assert settings.sentinel_master == "mymaster"


def test_missing_redis_config_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([], {}, capsys) == \
        "give exactly one of --redis-url, --sentinel and --cluster-nodes"


def test_both_redis_url_and_sentinel_exit_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails([*URL, "--sentinel", "h:1"], {}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --redis-url and --sentinel)")


def test_redis_url_from_env_and_sentinel_flag_is_also_both(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--sentinel", "h:1"], {"CHAT_REDIS_URL": "redis://x/0"}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --redis-url and --sentinel)")


def test_cluster_nodes_and_sentinel_exit_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--cluster-nodes", "h:1", "--sentinel", "h:2"], {}, capsys)
    assert msg == ("give exactly one of --redis-url, --sentinel and --cluster-nodes "
                   "(got --sentinel and --cluster-nodes)")


def test_cluster_nodes_from_env_are_seed_addresses() -> None:
    settings = load_settings([], {"CHAT_CLUSTER_NODES": "h1:7000, h2:7001"})
    assert settings.cluster_seeds == [("h1", 7000), ("h2", 7001)]


def test_a_cluster_node_that_is_not_host_port_exits_with_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert fails(["--cluster-nodes", "h1:7000,h2"], {}, capsys) == \
        "--cluster-nodes entry 'h2' is not host:port"


@pytest.mark.parametrize("entry", ["h1", "h1:x", ":26379", "h1:", "h1:1,,h2:2", "h1:1,h2"])
def test_bad_sentinel_entry_exits_with_a_clear_error(
        entry: str, capsys: pytest.CaptureFixture[str]) -> None:
    msg = fails(["--sentinel", entry], {}, capsys)
    assert msg.startswith("--sentinel entry ")
    assert msg.endswith(" is not host:port")


def test_cert_without_key_exits_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, "--tls-cert", "c.pem"], {}, capsys) == (
        "--tls-cert and --tls-key go together")


def test_key_without_cert_exits_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL], {"CHAT_TLS_KEY": "k.pem"}, capsys) == (
        "--tls-cert and --tls-key go together")


def test_cert_and_key_together_are_accepted() -> None:
    settings = load_settings([*URL, "--tls-cert", "c.pem", "--tls-key", "k.pem"], {})
    assert (settings.tls_cert, settings.tls_key) == ("c.pem", "k.pem")


@pytest.mark.parametrize("port", ["65536", "-1"])
def test_port_out_of_range_exits_with_a_clear_error(
        port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fails([*URL, f"--port={port}"], {}, capsys) == f"--port {port} is not a port number"


def test_port_zero_is_accepted() -> None:
    assert load_settings([*URL, "--port", "0"], {}).port == 0


def test_public_urls_and_allowed_origins_must_be_http_urls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings([*URL, "--public-urls", "http://a:1,https://b"], {
        "CHAT_ALLOWED_ORIGINS": "https://chat.example.org"})
    assert settings.public_urls == "http://a:1,https://b"
    assert settings.allowed_origins == "https://chat.example.org"
    assert "--public-urls" in fails([*URL, "--public-urls", "a.example:8765"], {}, capsys)
    assert "--allowed-origins" in fails([*URL, "--allowed-origins", "ws://x"], {}, capsys)


@pytest.mark.parametrize("flag", ["--trusted-proxies", "--admin-allow"])
def test_a_network_list_with_a_bad_entry_is_refused_naming_it(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        load_settings([*URL, flag, "10.0.0.0/8,nginx.local"], {})
    assert f"{flag}: 'nginx.local' is not" in capsys.readouterr().err
