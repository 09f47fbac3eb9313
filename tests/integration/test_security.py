"""TLS (wss:// and https://), Redis AUTH, and no secrets in the server log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from client import ChatClient
from tests.certs import self_signed
from tests.conftest import StartServer
from tests.procs import RedisNode, free_port
from tests.wsclient import Peer

SECRET_PASSWORD = "pw-S3CRET-horse-91"
WRONG_PASSWORD = "WRONG-pw-55xx-guess"
SECRET_BODY = "BODY-zq81-never-log-me"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    return str(cert), str(key)


def get_json(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_tls_serves_wss_to_the_client_library_and_healthz_over_https(
    redis_url: str, start_server: StartServer, certificate: tuple[str, str]
) -> None:
    cert, key = certificate
    server = start_server("--tls-cert", cert, "--tls-key", key, redis_url=redis_url)
    assert server.url.startswith("wss://")
    async with ChatClient(urls=[server.url], ca_file=cert, retry_deadline=10) as client:
        await client.register("ann", SECRET_PASSWORD)
        await client.login("ann", SECRET_PASSWORD)
        await client.send("ann", "over tls")
        assert [m.body for m in (await client.fetch()).messages] == ["over tls"]
    status, body = get_json(f"{server.http_url}/healthz", ssl.create_default_context(cafile=cert))
    assert (status, body["status"]) == (200, "ok")


async def test_tls_server_refuses_unverified_and_plaintext_clients(
    redis_url: str, start_server: StartServer, certificate: tuple[str, str]
) -> None:
    cert, key = certificate
    server = start_server("--tls-cert", cert, "--tls-key", key, redis_url=redis_url)
    with pytest.raises(ssl.SSLCertVerificationError):
        await Peer.connect(server.url)  # system CAs do not know our certificate
    with pytest.raises(Exception):  # noqa: B017  (any handshake failure will do)
        await Peer.connect(server.url.replace("wss://", "ws://"))
    assert "listening on wss://" in server.log()


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[RedisNode]:
    node = RedisNode(datadir=tmp_path / "auth-redis", port=free_port(), password="r3dis-AUTH-pw")
    node.start()
    yield node
    node.stop()


async def test_redis_auth_with_a_password_file_works_end_to_end(
    redis_with_password: RedisNode, start_server: StartServer, tmp_path: Path
) -> None:
    password_file = tmp_path / "redis-password"
    password_file.write_text("r3dis-AUTH-pw\n")
    url = f"redis://127.0.0.1:{redis_with_password.port}/0"  # no password in the URL
    server = start_server("--redis-password-file", str(password_file), redis_url=url)
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    await alice.send_message("alice", "stored behind AUTH")
    assert (await alice.ok("fetch"))["messages"][0]["body"] == "stored behind AUTH"
    assert get_json(f"{server.http_url}/healthz")[0] == 200
    assert "r3dis-AUTH-pw" not in server.log()


async def test_wrong_redis_password_is_a_clear_health_error_not_a_crash(
    redis_with_password: RedisNode, start_server: StartServer, tmp_path: Path
) -> None:
    password_file = tmp_path / "redis-password"
    password_file.write_text("not-the-redis-pw\n")
    url = f"redis://127.0.0.1:{redis_with_password.port}/0"
    server = start_server("--redis-password-file", str(password_file), redis_url=url)
    status, body = get_json(f"{server.http_url}/healthz")
    assert status == 503 and body["status"] == "unavailable"
    assert "auth" in body["reason"].lower() or "password" in body["reason"].lower(), body
    peer = await Peer.connect(server.url)
    reply = await peer.request("register", username="ann", password=SECRET_PASSWORD)
    assert reply["error"] == "unavailable", reply
    log = server.log()
    assert "Traceback" not in log and "not-the-redis-pw" not in log
    assert server.proc is not None and server.proc.poll() is None


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_password_token_or_body_reaches_the_log(
    redis_url: str, start_server: StartServer, log_format: str
) -> None:
    server = start_server("--log-level", "DEBUG", "--log-format", log_format,
                          redis_url=redis_url)
    ann, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    token = (await ann.register_login("ann", SECRET_PASSWORD))["token"]
    await bob.register_login("bob", SECRET_PASSWORD + "-bob")
    await ann.send_message("bob", SECRET_BODY)
    assert (await bob.event())["message"]["body"] == SECRET_BODY
    replies = [
        await ann.request("send", to="nobody", body=SECRET_BODY + "-1", msg_id="m2"),
        await ann.request("send", to="bob", body=SECRET_BODY * 200, msg_id="m3"),
        await bob.request("login", username="ann", password=WRONG_PASSWORD),
        await bob.request("delete_account", password=WRONG_PASSWORD + "-2"),
        await bob.request("register", username="Bad Name", password=SECRET_PASSWORD + "-3"),
        await bob.request("resume", token=token + "x"),
    ]
    assert all(reply["ok"] is False for reply in replies), replies
    await bob.send_raw('{"op": "send", "id": 9, "body": "' + SECRET_BODY + '-4", ')
    assert (await bob.recv())["error"] == "bad_request"
    other = await Peer.connect(server.url)
    await other.ok("resume", token=token)
    await other.ok("logout")
    await ann.close()
    server.stop()
    log = server.log()
    assert "op=send" in log, "DEBUG request lines are expected in the log"
    for secret in (SECRET_PASSWORD, WRONG_PASSWORD, SECRET_BODY, token, token.split(".")[1],
                   "$argon2id$"):
        assert secret not in log, f"{secret!r} leaked into the {log_format} log"


async def test_tokens_expire_and_redis_holds_no_usable_token_or_password(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--token-ttl-s", "1", redis_url=redis_url)
    peer = await Peer.connect(server.url)
    token = (await peer.register_login("ann", SECRET_PASSWORD))["token"]
    assert len(token.split(".")[1]) >= 43  # 256 random bits, url-safe base64
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        dump = []
        for key in client.scan_iter("*"):
            kind = client.type(key)
            if kind == "hash":
                fields: dict[str, str] = client.hgetall(key)  # type: ignore[assignment]
                dump += [f"{f}={v}" for f, v in fields.items()]
            elif kind == "string":
                dump.append(str(client.get(key)))
        stored = "\n".join(dump)
    finally:
        client.close()
    assert token.split(".")[1] not in stored and SECRET_PASSWORD not in stored
    assert "$argon2id$" in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    other = await Peer.connect(server.url)
    await other.ok("resume", token=token)
    await asyncio.sleep(1.2)
    assert (await other.request("resume", token=token))["error"] == "bad_token"
