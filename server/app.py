"""Start and stop one instance: /ws, /healthz, /readyz and /metrics on one port.

Stopping is idempotent and drains: stop accepting, let each connection
finish the request in hand, send `shutdown`, close with 1001, then close
Redis. A second SIGTERM (or SIGINT) exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import ssl
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from server import admission, errors, logs, metrics, redis_conn
from server.auth import Passwords
from server.commit import GroupCommitter
from server.delivery import Delivery
from server.hashing import HashSlots
from server.health import Health
from server.redis_probe import RedisProbe
from server.services import Services
from server.settings import Settings
from server.store import Store
from server.topology import Topology
from server.ws_handler import Connection

log = logging.getLogger(__name__)

#: Beyond --shutdown-grace-ms: time for close frames and Redis to finish.
HARD_STOP_EXTRA_S = 10.0


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = logs.instance_name(settings.instance_id, settings.host, settings.port)
        self.handles = redis_conn.connect(settings)
        self.topology = Topology(
            self.handles, master_name=settings.sentinel_master,
            interval_ms=settings.topology_interval_ms, on_failover=self._on_failover,
        )
        self.committer = GroupCommitter(
            self.handles.primary, required_replicas=self.topology.required_replicas,
            ack_timeout_ms=settings.ack_timeout_ms, fsync=settings.durability == "fsync",
        )
        # Acks need no replica: their own batches, never behind a WAIT.
        self.ack_batcher = GroupCommitter(
            self.handles.primary, required_replicas=lambda: 0,
            ack_timeout_ms=settings.ack_timeout_ms, max_in_flight=1, count_batches=False,
        )
        store = Store(self.handles.primary, self.committer, max_inbox=settings.max_inbox,
                      acks=self.ack_batcher)
        # The ping channel must be this process's alone: an instance that heard
        # another's pings (same --instance-id) would hide its own deaf listener.
        delivery = Delivery(
            self.handles.primary, store, instance_id=f"{self.instance_id}/{secrets.token_hex(4)}",
            sweep_interval_ms=settings.sweep_interval_ms,
            push_grace_ms=settings.ack_timeout_ms + 2000,
        )
        self.services = Services(
            settings=settings, store=store, delivery=delivery, topology=self.topology,
            passwords=Passwords(
                time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
                slots=HashSlots(workers=settings.hash_threads,
                                max_queue=settings.max_hash_queue,
                                max_per_address=settings.max_hash_per_address),
            ),
            instance_id=self.instance_id,
        )
        self.connections: set[Connection] = set()
        # Counted from TCP accept to close (server/admission.py).
        self.per_address = admission.AddressCounts(settings.max_connections_per_ip)
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self.health = Health(
            topology=self.topology, delivery=delivery,
            probe=RedisProbe(settings, self.handles), instance_id=self.instance_id,
            interval_s=settings.topology_interval_ms / 1000,
            sample_interval_s=settings.sweep_interval_ms / 1000,
            sentinel_mode=bool(self.handles.sentinels),
            users=lambda: (c.username for c in self.connections if c.username is not None),
        )
        metrics.INBOX_LIMIT.set(settings.max_inbox)
        self._stopping: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()
        self._idle = asyncio.Event()

    # Start ----------------------------------------------------------------------

    async def start(self) -> str:
        """Listen; returns the ws:// URL (with the real port when port was 0)."""
        s = self.settings
        await self.topology.start()
        if not self.topology.now.primary_ok:
            log.warning("Redis not reachable yet (%s); serving 'unavailable' until it is",
                        self.topology.now.reason)
        else:
            with contextlib.suppress(errors.Unavailable):
                await self.services.store.load_scripts()
        self.committer.start()
        self.ack_batcher.start()
        self.services.delivery.start()
        self.health.start()  # probes at once, then every topology interval
        tls = None
        if s.tls_cert and s.tls_key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(s.tls_cert, s.tls_key)
        admission.check_descriptor_limit(s)
        self._server = await serve(
            self._handle, s.host, s.port, ssl=tls, process_request=self._http,
            max_size=s.max_frame_bytes, compression=None, max_queue=4, close_timeout=2,
            open_timeout=s.open_timeout_s, ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            create_connection=admission.connection_class(self.per_address),
        )
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        url = f"{'wss' if tls else 'ws'}://{host}:{port}/ws"
        log.info("listening on %s", url)
        return url

    def _on_failover(self, old: str | None, new: str) -> None:
        self.services.delivery.force_resync()

    # HTTP -------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/healthz":
            status, body = self.health.status()
            return _json(connection, status, body)
        if path == "/readyz":
            # Ready for new connections: healthy (ok or degraded) and not draining.
            status, body = self.health.status()
            ready = status == HTTPStatus.OK
            return _json(connection, status, {"ready": ready, "status": body["status"],
                                              **({} if ready else {"reason": body["reason"]})})
        if path == "/metrics":
            page, content_type = metrics.exposition()
            return _with_type(connection.respond(HTTPStatus.OK, page.decode()), content_type)
        if path != "/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found; the chat is at /ws\n")
        if self._stopping is not None:
            # Still listening so /healthz and /readyz can say "draining"; a
            # load balancer retries a refused upgrade on another instance.
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            response.headers["Retry-After"] = str(max(1, self.settings.retry_after_ms // 1000))
            return response
        return None

    # Connections ----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(ws, self.services, conn_id=f"{self.instance_id}/{next(self._ids)}",
                          address=admission.client_address(ws))
        self.connections.add(conn)
        try:
            if self._stopping is not None:
                conn.drain()
            await conn.serve()
        finally:
            self.connections.discard(conn)
            if not self.connections:
                self._idle.set()

    # Stop -------------------------------------------------------------------------

    def begin_stop(self) -> bool:
        """Start draining; False when a stop was already under way."""
        if self._stopping is not None:
            return False
        self.health.draining = True
        self._stopping = asyncio.create_task(self._stop())
        return True

    async def stop(self) -> None:
        """Drain and stop; every call waits for the same single shutdown."""
        self.begin_stop()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        log.info("draining %d connections", len(self.connections))
        # Whatever hangs (a Redis that stopped answering), the process ends.
        limit = self.settings.shutdown_grace_ms / 1000 + HARD_STOP_EXTRA_S
        watchdog = asyncio.get_running_loop().call_later(limit, _give_up, limit)
        for conn in list(self.connections):
            conn.drain()
        if self.connections:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.settings.shutdown_grace_ms / 1000)
        if self._server is not None:
            self._server.close()  # whatever is left after the grace period
            await self._server.wait_closed()
        await self.health.close()
        await self.services.delivery.close()
        await self.committer.close()
        await self.ack_batcher.close()
        await self.topology.close()
        await self.handles.close()
        self.services.passwords.slots.close()
        watchdog.cancel()
        log.info("stopped")
        self.stopped.set()


def _give_up(limit: float) -> None:
    log.error("drain did not finish within %.0f s; exiting now", limit)
    os._exit(1)


def _json(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, orjson.dumps(body).decode() + "\n")
    return _with_type(response, "application/json")


def _with_type(response: Response, content_type: str) -> Response:
    # Headers is a multi-dict: assignment would add a second Content-Type.
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = content_type
    return response


async def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; drain on the first, exit at once on the second."""
    app = App(settings)
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not app.begin_stop():
            log.warning("second %s: exiting now without draining", sig.name)
            os._exit(1)
        log.info("%s: draining (send it again to exit at once)", sig.name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await app.start()
    await app.stopped.wait()
    return 0
