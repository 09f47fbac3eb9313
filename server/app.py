"""Start and stop one instance: /ws, /healthz, /readyz, /metrics and the web page on one port.

What plain HTTP requests get is server/routes.py's; here the instance is
built, listens, takes connections and stops.

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

from redis.asyncio import Redis
from websockets.asyncio.server import Server, ServerConnection, serve

from server import logs, metrics
from server.conn import admission
from server.conn.auth import Passwords
from server.conn.hashing import HashSlots
from server.conn.services import Services
from server.data.cluster_commit import ClusterWrites
from server.data.commit import GroupCommitter, ShardedWrites
from server.delivery.fanout import Delivery
from server.health import Health
from server.routes import Routes
from server.settings import Settings
from server.storage import redis_conn
from server.storage.channels import Channels, PrimaryChannels, ShardChannels
from server.storage.cluster_topology import ClusterTopology
from server.storage.redis_probe import RedisProbe
from server.storage.snapshot import TopologyView
from server.storage.topology import Topology
from server.store import Store
from server.wire import client_address, errors
from server.ws_handler import CLOSE_POLICY, Connection

log = logging.getLogger(__name__)

#: Beyond --shutdown-grace-ms: time for close frames and Redis to finish.
HARD_STOP_EXTRA_S = 10.0


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = logs.instance_name(settings.instance_id, settings.host, settings.port)
        self.handles = redis_conn.connect(settings)
        cluster = bool(settings.cluster_nodes)
        several = cluster or bool(self.handles.sentinels)
        self.topology, writes, ack_writes, channels = self._storage(cluster)
        self.committer = GroupCommitter(
            self.handles.primary, required_replicas=self.topology.required_replicas,
            ack_timeout_ms=settings.ack_timeout_ms, fsync=settings.durability == "fsync",
            ledger=self.topology.ledger, shards=writes,
        )
        # Acks need no replica: their own batches, never behind a WAIT.
        self.ack_batcher = GroupCommitter(
            self.handles.primary, required_replicas=lambda: 0,
            ack_timeout_ms=settings.ack_timeout_ms, max_in_flight=1, count_batches=False,
            shards=ack_writes,
        )
        store = Store(self.handles.primary, self.committer, max_inbox=settings.max_inbox,
                      max_pending_per_sender=settings.max_pending_per_sender,
                      max_inbox_bytes=settings.max_inbox_bytes,
                      dedupe_window_ms=settings.dedupe_window_s * 1000, acks=self.ack_batcher,
                      cluster=cluster,
                      # With Sentinel or a Cluster every node may become primary (of its
                      # shard): the weakest picks the layout.
                      set_members=(lambda: self.topology.now.members) if several else None,
                      node=self._node_client if several else None)
        # The ping channel must be this process's alone: an instance that heard
        # another's pings (same --instance-id) would hide its own deaf listener.
        delivery = Delivery(
            channels, store, instance_id=f"{self.instance_id}/{secrets.token_hex(4)}",
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
        # Counted from TCP accept to close (server/conn/admission.py).
        self.per_address = admission.AddressCounts(settings.max_connections_per_ip)
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self.health = Health(
            topology=self.topology, delivery=delivery,
            probe=RedisProbe(settings, self.handles, shard_tags=self.topology.shard_tags
                             if isinstance(self.topology, ClusterTopology) else None),
            instance_id=self.instance_id,
            interval_s=settings.topology_interval_ms / 1000,
            sample_interval_s=settings.sweep_interval_ms / 1000,
            sentinel_mode=bool(self.handles.sentinels), cluster_mode=cluster,
            users=lambda: (c.username for c in self.connections if c.username is not None),
        )
        self.routes = Routes(settings, health=self.health,
                             tls=bool(settings.tls_cert and settings.tls_key),
                             draining=lambda: self._stopping is not None)
        metrics.INBOX_LIMIT.set(settings.max_inbox)
        self._stopping: asyncio.Task[None] | None = None
        self._legacy: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()
        self._idle = asyncio.Event()

    def _storage(self, cluster: bool) -> tuple[
            TopologyView, ShardedWrites | None, ShardedWrites | None, Channels]:
        """The topology, shard-by-shard commits (a Cluster only) and pub/sub feeds."""
        s, handles = self.settings, self.handles
        if not cluster:
            topology = Topology(handles, master_name=s.sentinel_master,
                                interval_ms=s.topology_interval_ms,
                                on_failover=self._on_failover, ack_timeout_ms=s.ack_timeout_ms)
            if not isinstance(handles.primary, Redis):
                raise TypeError("without --cluster-nodes the primary is one node's client")
            return topology, None, None, PrimaryChannels(handles.primary)
        shards = ClusterTopology(handles, s.cluster_seeds, interval_ms=s.topology_interval_ms,
                                 on_change=lambda: self._on_failover(None, "slots moved"))
        return (shards,
                ClusterWrites(handles, shards, ack_timeout_ms=s.ack_timeout_ms,
                              fsync=s.durability == "fsync"),
                ClusterWrites(handles, shards, ack_timeout_ms=s.ack_timeout_ms, waits=False),
                ShardChannels(handles, shards))

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
        self._legacy = asyncio.create_task(self._background_chores(), name="background-chores")
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
            self._handle, s.host, s.port, ssl=tls, process_request=self.routes.respond,
            max_size=s.max_frame_bytes, compression=None, max_queue=4, close_timeout=2,
            open_timeout=s.open_timeout_s, ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            create_connection=admission.connection_class(self.per_address,
                                                          s.trusted_networks),
        )
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        url = f"{'wss' if tls else 'ws'}://{host}:{port}/ws"
        log.info("listening on %s", url)
        return url

    async def _background_chores(self) -> None:
        """Find dedupe records of older layouts and expire legacy ones (once,
        retried); then, on a Cluster, sweep the directory steps a crash left
        pending, until the server stops (data/directory.py)."""
        store = self.services.store
        chore = store.dedupe.adopt_older_records
        while True:
            try:
                await chore()
                break
            except errors.Unavailable as exc:
                log.warning("%s failed (%s); retrying", chore.__name__, exc.detail)
                await asyncio.sleep(1.0)
        if self.settings.cluster_nodes:
            await store.directory.sweep_forever(self.settings.sweep_interval_ms / 1000)

    def _node_client(self, address: str) -> Redis:
        host, _, port = address.rpartition(":")
        return self.handles.node((host, int(port)))

    def _on_failover(self, old: str | None, new: str) -> None:
        self.services.delivery.force_resync()

    # Connections ----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        peer = admission.peer_address(ws)
        address = self.routes.client_of(ws, ws.request) if ws.request is not None else peer
        conn = Connection(ws, self.services, conn_id=f"{self.instance_id}/{next(self._ids)}",
                          address=address)
        # Through a trusted proxy the accept saw only the proxy: count the
        # client now, by the address the proxy reported.
        counted = None
        if client_address.allowed(peer, self.settings.trusted_networks):
            if not self.per_address.admit(conn.address_key):
                log.info("closing connection addr=%s: too many from its address", address)
                await ws.close(CLOSE_POLICY, "too many connections from your address")
                return
            counted = conn.address_key
        self.connections.add(conn)
        try:
            if self._stopping is not None:
                conn.drain()
            await conn.serve()
        finally:
            self.connections.discard(conn)
            if not self.connections:
                self._idle.set()
            if counted is not None:
                self.per_address.release(counted)

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
        if self._legacy is not None:
            self._legacy.cancel()
            await asyncio.gather(self._legacy, return_exceptions=True)
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
