"""Issue 17: connections that never finish the handshake, or too many from one
address, are closed without hurting anyone else.

Real server processes and hostile peers (tests/integration/hostile_peers.py);
timing bounds are the issue's, and print what they measured when they fail.
"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import StartServer
from tests.integration.hostile_peers import login_from
from tests.procs import ServerProc
from tests.wsclient import Peer


async def silent_connections(server: ServerProc, source: str, count: int
                             ) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    return [await asyncio.open_connection(server.host, server.port, local_addr=(source, 0))
            for _ in range(count)]


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_connections_that_never_finish_the_handshake_are_closed_after_open_timeout(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--open-timeout-s", "3", redis_url=redis_url)
    started = time.perf_counter()
    conns = await silent_connections(server, "127.0.0.2", 100)
    closed = await asyncio.gather(*(closed_within(r, 8.0) for r, _ in conns))
    took = time.perf_counter() - started
    for _, writer in conns:
        writer.close()
    assert all(closed), f"{closed.count(False)} of 100 still open after 8 s"
    assert took <= 8.5


async def test_connections_beyond_the_per_address_limit_are_closed_at_once(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--max-connections-per-ip", "50", redis_url=redis_url)
    setup = await Peer.connect(server.url)
    await setup.ok("register", username="bystander", password="correct horse")
    conns = await silent_connections(server, "127.0.0.2", 100)
    login = asyncio.create_task(login_from(server, "127.0.0.3", "bystander"))
    closed = await asyncio.gather(*(closed_within(r, 2.0) for r, _ in conns))
    assert (await asyncio.wait_for(login, 10))["ok"] is True
    for _, writer in conns:
        writer.close()
    assert closed.count(True) >= 50, f"only {closed.count(True)} of 100 closed within 2 s"
