"""Who may open a connection: per-address counts from the first byte, descriptors.

A connection counts against --max-connections-per-ip from TCP accept, not
from the WebSocket upgrade, so connections that never finish (or never
start) their handshake cannot hold descriptors past the limit; beyond it a
new connection is closed at once, before any byte of it is read. The
address counted is the TCP peer's (IPv6 by its /64); a connection from a
trusted proxy (--trusted-proxies) is counted once its handshake names the
client (X-Forwarded-For), by that client's address (App._handle).
--open-timeout-s (websockets' open_timeout, counted from accept as well)
closes those that stall within the limit.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter

from websockets.asyncio.server import ServerConnection

from server import metrics
from server.settings import Settings
from server.wire.client_address import Network, allowed, limit_key

log = logging.getLogger(__name__)

#: Descriptors the process needs beyond client connections: Redis pool,
#: Sentinels, pub/sub, listening socket, logs.
RESERVED_DESCRIPTORS = 64


def peer_address(connection: ServerConnection) -> str:
    """The TCP peer's address (the client's own unless it is a trusted proxy)."""
    peer = connection.remote_address
    return str(peer[0]) if peer else "unknown"


class AddressCounts:
    """Open connections per client address, counted from accept to close."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        if self.counts[address] >= self.limit:
            metrics.CONNECTIONS_REFUSED.inc()
            return False
        self.counts[address] += 1
        return True

    def release(self, address: str) -> None:
        self.counts[address] -= 1
        if self.counts[address] <= 0:
            del self.counts[address]


def connection_class(counts: AddressCounts,
                     trusted: tuple[Network, ...] = ()) -> type[ServerConnection]:
    """A ServerConnection that counts itself against `counts` from accept
    (unless its peer is a trusted proxy: see the module docstring)."""

    class CountedConnection(ServerConnection):
        _counted: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            peer = peer_address(self)
            if trusted and allowed(peer, trusted):
                return
            address = limit_key(peer)
            if counts.admit(address):
                self._counted = address
            else:
                log.debug("closing connection over the per-address limit from %s", address)
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._counted is not None:
                counts.release(self._counted)
                self._counted = None
            super().connection_lost(exc)

    return CountedConnection


def check_descriptor_limit(settings: Settings) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard one; warn when still short.

    Short means one address alone could use up the descriptors before it
    reaches --max-connections-per-ip, and then everyone's accept fails.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = settings.max_connections_per_ip + settings.redis_max_connections \
        + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.info("cannot raise the descriptor limit to %s: %s", hard, exc)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "descriptor limit %d is below what the connection limits allow (%d: "
            "--max-connections-per-ip %d + --redis-max-connections %d + %d); raise "
            "LimitNOFILE / ulimit -n or lower --max-connections-per-ip",
            soft, wanted, settings.max_connections_per_ip, settings.redis_max_connections,
            RESERVED_DESCRIPTORS)
