"""Redis AUTH end to end in Sentinel mode: nodes with requirepass/masterauth,
Sentinels with auth-pass, the server with --redis-password-file."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartServer
from tests.integration.conftest import MakeSentinelSet
from tests.scrape import health
from tests.wsclient import Peer

PASSWORD = "s3cret-redis-pass"


async def test_server_with_password_file_serves_over_a_password_protected_set(
    make_sentinel_set: MakeSentinelSet, start_server: StartServer, tmp_path: Path,
) -> None:
    local = make_sentinel_set(password=PASSWORD)
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    common = ("--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name,
              "--redis-password-file", str(password_file))
    a, b = start_server(*common), start_server(*common)
    status, body = await health(a.http_url)
    assert status == 200 and body["status"] == "ok" and body["replicas_in_sync"] == 2, body
    alice, bob = await Peer.connect(a.url), await Peer.connect(b.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    await alice.send_message("bob", "through an authenticated set")
    assert (await bob.event())["message"]["body"] == "through an authenticated set"
