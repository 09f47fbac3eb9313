"""What /healthz answers, proved by doing rather than by asking.

An instance is healthy only when both halves of its job work right now:
- it can write: a probe loop SETs a marker key on the primary (on a Redis
  Cluster on every shard primary) every topology interval; PING or
  `role:master` alone would stay green through MISCONF (AOF write errors),
  OOM, NOPERM and a demoted primary;
- it can hear: the same loop PUBLISHes a ping on this instance's own
  channel (on a Cluster one per shard, SPUBLISH) and the pub/sub listener
  stamps its return on each, so a listener that is connected but deaf
  (Centrifugo #1189) turns the check red.
Both must have succeeded within `max_age` seconds. The loop also samples
the inbox sizes of connected users for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from redis.exceptions import RedisError

from server import metrics
from server.delivery.fanout import Delivery
from server.storage.redis_probe import RedisProbe
from server.storage.snapshot import TopologyView
from server.wire import errors

log = logging.getLogger(__name__)

#: Most users whose inbox length one sample reads.
SAMPLE_USERS = 200


class Health:
    def __init__(
        self, *, topology: TopologyView, delivery: Delivery, probe: RedisProbe, instance_id: str,
        interval_s: float, sample_interval_s: float, sentinel_mode: bool,
        users: Callable[[], Iterable[str]], cluster_mode: bool = False,
    ) -> None:
        self._topology = topology
        self._delivery = delivery
        self._probe = probe
        self._instance = instance_id
        self._interval = interval_s
        self._sample_interval = sample_interval_s
        self._sentinel_mode = sentinel_mode
        self._cluster_mode = cluster_mode
        self._users = users
        #: A probe older than this fails the check: a few missed rounds, not one.
        self.max_age = max(3.0, 6 * interval_s)
        self.last_write = 0.0  # monotonic time of the last accepted probe write
        self.write_error = "no probe write yet"
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        metrics.WRITE_AGE.set_function(lambda: self._age(self.last_write))
        metrics.PUBSUB_PING_AGE.set_function(lambda: self._age(self._delivery.last_ping))
        metrics.USERS_ONLINE.set_function(lambda: len(set(self._users())))

    @staticmethod
    def _age(stamp: float) -> float:
        return time.monotonic() - stamp if stamp else float("inf")

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._probe_forever(), name="health-probe"),
            asyncio.create_task(self._sample_forever(), name="inbox-sample"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # Status ---------------------------------------------------------------------

    def status(self) -> tuple[HTTPStatus, dict[str, Any]]:
        """The /healthz answer; also sets the chat_health gauge."""
        code, body = self._evaluate()
        for state in metrics.HEALTH_STATES:
            metrics.HEALTH.labels(state).set(1 if body["status"] == state else 0)
        body["instance"] = self._instance
        return code, body

    def _evaluate(self) -> tuple[HTTPStatus, dict[str, Any]]:
        down = HTTPStatus.SERVICE_UNAVAILABLE
        if self.draining:
            return down, {"status": "draining", "reason": "stopping: reconnect elsewhere"}
        snap = self._topology.now
        if not snap.primary_ok:
            return down, {"status": "unavailable", "reason": f"no Redis primary: {snap.reason}"}
        if not snap.sentinel_majority:
            return down, {"status": "unavailable", "reason":
                          f"only {snap.sentinels_reachable} of {snap.sentinels_total} "
                          "Sentinels reachable: may be on the minority side of a partition"}
        write_age = self._age(self.last_write)
        if write_age > self.max_age:
            return down, {"status": "unavailable", "reason":
                          f"no write accepted by the primary {_ago(write_age)}: "
                          f"{self.write_error}"}
        if not self._delivery.listener_alive(self.max_age):
            age = self._age(self._delivery.last_ping)
            return down, {"status": "unavailable", "reason":
                          f"pub/sub listener has not heard its own ping {_ago(age)}"}
        # In sync: online at the primary; required: what a send waits for (a
        # fenced node is online yet not required until it has caught up).
        body: dict[str, Any] = {"status": "ok", "primary": snap.primary,
                                "replicas_in_sync": snap.replicas_online,
                                "replicas_required": snap.required_replicas}
        if self._sentinel_mode:
            body["sentinels"] = f"{snap.sentinels_reachable}/{snap.sentinels_total}"
        # On a Cluster the counts are the fewest of any shard's.
        if (self._sentinel_mode or self._cluster_mode) and snap.required_replicas == 0:
            body.update(status="degraded", reason="no replica in sync: every write "
                        + ("to a shard " if self._cluster_mode else "") + "rests on one node")
        return HTTPStatus.OK, body

    # Probe ----------------------------------------------------------------------

    async def _probe_forever(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self._interval)

    async def probe_once(self) -> None:
        """Write the marker, then send the pub/sub ping; each bounded by max_age."""
        try:
            await asyncio.wait_for(
                self._probe.write_marker(self._instance, int(time.time() * 1000)), self.max_age
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self.write_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            metrics.PROBE_FAILURES.inc()
            log.debug("probe write failed: %s", self.write_error)
        else:
            self.last_write = time.monotonic()
            self.write_error = ""
        try:
            await asyncio.wait_for(self._delivery.ping(), self.max_age)
        except (RedisError, OSError, TimeoutError, errors.Unavailable) as exc:
            log.debug("pub/sub ping failed: %s", exc)
        metrics.SENTINELS_CONFIGURED.set(self._topology.now.sentinels_total)
        metrics.SENTINELS_REACHABLE.set(self._topology.now.sentinels_reachable)
        self.status()

    # Inbox sampling ---------------------------------------------------------------

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sample_interval)
            try:
                await self.sample_inboxes()
            except (RedisError, OSError) as exc:
                log.debug("inbox sample failed: %s", exc)

    async def sample_inboxes(self) -> None:
        """Observe the inbox length of (up to SAMPLE_USERS) connected users."""
        names = sorted(set(self._users()))
        if len(names) > SAMPLE_USERS:
            names = random.sample(names, SAMPLE_USERS)
        if not names:
            metrics.INBOX_MAX.set(0)
            return
        sizes = await self._probe.inbox_lengths(names)
        for size in sizes.values():
            metrics.INBOX_SIZE.observe(size)
        metrics.INBOX_MAX.set(max(sizes.values()))


def _ago(age: float) -> str:
    return "since start" if age == float("inf") else f"for {age:.1f} s"
