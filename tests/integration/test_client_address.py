"""Who the client is (issue 18): throttles and operator endpoints on real servers.

Other client addresses are other loopback addresses (127.0.0.2 ...) as the
TCP source, or X-Forwarded-For headers sent through a raw WebSocket client
from 127.0.0.1, the trusted proxy here.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from urllib.parse import urlsplit

from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.scrape import wait_health
from tests.wsclient import Peer, Reply

PASSWORD = "correct horse"
WRONG = "wrong horse!"
PROXY = ("--trusted-proxies", "127.0.0.1/32")


async def attempt(server: ServerProc, password: str, *, name: str = "ann",
                  source: str | None = None, forwarded_for: tuple[str, ...] = ()) -> Reply:
    """One login on a connection of its own, from that source / header."""
    peer = await Peer.connect(server.url, source=source, forwarded_for=forwarded_for)
    try:
        return await peer.request("login", username=name, password=password)
    finally:
        await peer.close()


async def register(server: ServerProc, name: str = "ann") -> None:
    peer = await Peer.connect(server.url)
    await peer.ok("register", username=name, password=PASSWORD)
    await peer.close()


def code(reply: Reply) -> str:
    return "ok" if reply["ok"] else str(reply["error"])


async def test_failed_logins_behind_a_trusted_proxy_throttle_that_address_not_another(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, redis_url=redis_url)
    await register(server)
    codes = [code(await attempt(server, WRONG, forwarded_for=("198.51.100.7",)))
             for _ in range(12)]
    assert codes == ["bad_credentials"] * 11 + ["rate_limited"]
    assert code(await attempt(server, PASSWORD, forwarded_for=("198.51.100.7",))) \
        == "rate_limited"
    assert code(await attempt(server, PASSWORD, forwarded_for=("198.51.100.8",))) == "ok"


async def test_the_header_from_an_untrusted_peer_changes_nothing(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, redis_url=redis_url)
    await register(server)
    codes = [code(await attempt(server, WRONG, source="127.0.0.2",
                                forwarded_for=(f"198.51.100.{i}",))) for i in range(12)]
    assert codes[-1] == "rate_limited"
    # The throttle is on 127.0.0.2 itself, not on the addresses it claimed.
    assert code(await attempt(server, PASSWORD, source="127.0.0.2",
                              forwarded_for=("203.0.113.1",))) == "rate_limited"
    assert code(await attempt(server, PASSWORD, source="127.0.0.3")) == "ok"


async def test_what_a_client_prepends_to_the_header_changes_nothing(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, redis_url=redis_url)
    await register(server)
    codes = [code(await attempt(server, WRONG, forwarded_for=(f"203.0.113.{i}, 198.51.100.7",)))
             for i in range(12)]
    assert codes[-1] == "rate_limited"
    assert code(await attempt(server, PASSWORD,
                              forwarded_for=("203.0.113.99", "198.51.100.7"))) == "rate_limited"


async def test_failures_for_one_name_from_many_addresses_end_in_rate_limited(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, "--login-max-failures-per-user", "30", redis_url=redis_url)
    await register(server)
    codes = [code(await attempt(server, WRONG, forwarded_for=(f"198.51.100.{i}",)))
             for i in range(40)]
    assert codes[:31] == ["bad_credentials"] * 31
    assert codes[-1] == "rate_limited"
    # Even the right password, from anywhere, for the rest of the window.
    assert code(await attempt(server, PASSWORD, forwarded_for=("203.0.113.1",))) \
        == "rate_limited"
    await register(server, "bob")
    assert code(await attempt(server, PASSWORD, name="bob",
                              forwarded_for=("198.51.100.1",))) == "ok"


async def test_failures_from_one_ipv6_64_count_together(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, redis_url=redis_url)
    await register(server)
    codes = [code(await attempt(server, WRONG, forwarded_for=(f"2001:db8:1:2::{i:x}",)))
             for i in range(1, 13)]
    assert codes[-1] == "rate_limited"
    assert code(await attempt(server, PASSWORD, forwarded_for=("2001:db8:1:3::1",))) == "ok"


def get_from(server: ServerProc, path: str, *, source: str = "127.0.0.1",
             forwarded_for: str | None = None) -> tuple[int, str]:
    """GET `path` with the TCP source address `source`."""
    url = urlsplit(server.http_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"X-Forwarded-For": forwarded_for}
                     if forwarded_for else {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def test_metrics_are_forbidden_and_health_is_bare_for_other_addresses(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--admin-allow", "127.0.0.1/32", redis_url=redis_url)
    await wait_health(server.http_url, lambda status, body: status == 200)  # as the operator
    status, _ = await asyncio.to_thread(get_from, server, "/metrics", source="127.0.0.2")
    assert status == 403
    for path in ("/healthz", "/readyz"):
        status, body = await asyncio.to_thread(get_from, server, path, source="127.0.0.2")
        assert status == 200
        assert "127.0.0.1" not in body and str(server.port) not in body
        assert json.loads(body)["status"] == "ok"
    assert json.loads((await asyncio.to_thread(get_from, server, "/healthz",
                                               source="127.0.0.2"))[1]) == {"status": "ok"}


async def test_operators_get_metrics_and_health_details(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--admin-allow", "127.0.0.1/32", redis_url=redis_url)
    await wait_health(server.http_url, lambda status, body: status == 200)
    status, page = await asyncio.to_thread(get_from, server, "/metrics")
    assert status == 200 and "chat_" in page
    status, body = await asyncio.to_thread(get_from, server, "/healthz")
    assert status == 200 and "primary" in json.loads(body)


async def test_operator_addresses_are_judged_after_trusted_proxies(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server(*PROXY, redis_url=redis_url)  # admin: loopback by default
    status, _ = await asyncio.to_thread(get_from, server, "/metrics",
                                        forwarded_for="198.51.100.7")
    assert status == 403
    status, _ = await asyncio.to_thread(get_from, server, "/metrics", forwarded_for="127.0.0.1")
    assert status == 200


async def test_connections_through_a_trusted_proxy_count_per_client_address(
    redis_url: str, start_server: StartServer
) -> None:
    # The accept saw only the proxy; the handshake's X-Forwarded-For names the
    # client, and the per-address limit counts that client, not the proxy.
    server = start_server(*PROXY, "--max-connections-per-ip", "2", redis_url=redis_url)
    mine = [await Peer.connect(server.url, forwarded_for=("198.51.100.7",)) for _ in range(3)]
    other = await Peer.connect(server.url, forwarded_for=("198.51.100.8",))
    try:
        assert await mine[2].closed_code(timeout=5) == 1008
        for i, peer in enumerate((*mine[:2], other)):
            await peer.ok("register", username=f"proxied{i}", password=PASSWORD)
    finally:
        for peer in (*mine, other):
            await peer.close()
