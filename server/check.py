"""`python -m server check [flags]`: is this configuration ready to serve?

Takes the server's own flags and CHAT_* variables, talks to the Redis set
the way the server would, and prints one line per check, `OK`, `WARN` or
`FAIL` with what is wrong in plain words. Exit 0 when nothing failed (WARN
lines are risks, not faults), 1 otherwise. Redis commands live in
server/storage/redis_probe.py; this module asks them and judges the Sentinel
set, server/check_config.py judges the configuration and the nodes'
settings, server/check_fences.py the fence records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import AuthenticationError, RedisError

from server import check_config
from server.check_fences import fence_findings
from server.settings import Settings
from server.storage import redis_conn
from server.storage.redis_probe import RedisProbe
from server.storage.sentinel_majority import is_majority, majority

T = TypeVar("T")

#: Longest any one Redis question may take.
STEP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Result:
    level: str  # OK, WARN or FAIL
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.level:<4} {self.name}: {self.detail}"


def why(exc: BaseException, *, password_given: bool = True) -> str:
    """A Redis failure in words an operator can act on."""
    text = str(exc)
    auth_failed = isinstance(exc, AuthenticationError) or "WRONGPASS" in text
    if "NOAUTH" in text or (auth_failed and not password_given):
        return "the server requires a password: give --redis-password-file"
    if auth_failed:
        return "authentication failed: wrong password (see --redis-password-file)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _step(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, STEP_TIMEOUT_S)


class Checker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.results: list[Result] = []

    def add(self, level: str, name: str, detail: str) -> None:
        self.results.append(Result(level, name, detail))

    @property
    def failed(self) -> bool:
        return any(r.level == "FAIL" for r in self.results)

    async def run(self) -> list[Result]:
        s = self.settings
        mode = (f"Sentinel mode, master {s.sentinel_master!r}, {len(s.sentinels)} Sentinels"
                if s.sentinel else f"Redis Cluster, {len(s.cluster_seeds)} seed nodes"
                if s.cluster_nodes else "single Redis (no automatic failover)")
        self.add("OK", "config", f"{mode}, durability {s.durability}")
        for finding in check_config.tls_files(s):
            self.add(*finding)
        try:
            handles = redis_conn.connect(s)
        except ValueError as exc:  # the password file
            self.add("FAIL", "password file", str(exc))
            return self.results
        probe = RedisProbe(s, handles)
        try:
            client: Redis | None = None
            if s.sentinel:
                primary = await self._sentinels(probe)
                client = probe.node(*primary) if primary else None
            elif isinstance(handles.primary, Redis):
                client = handles.primary
            else:  # a Cluster: every shard primary, the marker written on each
                for host, port in await self._cluster_primaries(handles.primary):
                    node = probe.node(host, port)
                    await self._primary(probe, node)
                    await probe.close(node)
            if client is not None:
                await self._primary(probe, client)
                if client is not handles.primary:
                    await probe.close(client)
        finally:
            await handles.close()
        return self.results

    # Sentinels ----------------------------------------------------------------

    async def _sentinels(self, probe: RedisProbe) -> tuple[str, int] | None:
        """Check every Sentinel; the primary they agree on, if they do."""
        s = self.settings
        named: dict[str, tuple[str, int] | None] = {}
        reachable: list[Redis] = []
        clients = [probe.node(host, port) for host, port in s.sentinels]
        try:
            await self._each_sentinel(probe, clients, named, reachable)
            return await self._majority(probe, named, reachable)
        finally:
            await probe.close(*clients)

    async def _each_sentinel(
        self, probe: RedisProbe, clients: list[Redis],
        named: dict[str, tuple[str, int] | None], reachable: list[Redis],
    ) -> None:
        master = self.settings.sentinel_master
        for client in clients:
            where = _address(client)
            try:
                await _step(probe.ping(client))
                named[where] = await _step(probe.master_address(client, master))
            except (RedisError, OSError, TimeoutError) as exc:
                given = bool(client.connection_pool.connection_kwargs.get("password"))
                self.add("FAIL", f"sentinel {where}", why(exc, password_given=given))
                continue
            reachable.append(client)
            if named[where] is None:
                self.add("FAIL", f"sentinel {where}",
                         f"does not monitor a master named {master!r} "
                         "(check --sentinel-master)")
            else:
                self.add("OK", f"sentinel {where}", "reachable")

    async def _majority(
        self, probe: RedisProbe, named: dict[str, tuple[str, int] | None],
        reachable: list[Redis],
    ) -> tuple[str, int] | None:
        s = self.settings
        total = len(s.sentinels)
        if not is_majority(len(reachable), total):
            self.add("FAIL", "sentinel majority",
                     f"only {len(reachable)} of {total} Sentinels answer: the server will "
                     "answer 'unavailable' (it may sit on the minority side of a partition)")
        elif total < 3:
            self.add("WARN", "sentinel majority",
                     f"{len(reachable)} of {total} reachable, but fewer than 3 Sentinels "
                     "cannot fail over after losing one")
        else:
            self.add("OK", "sentinel majority", f"{len(reachable)} of {total} reachable")
        if not reachable:
            return None
        ok, text = await _step(probe.ckquorum(reachable[0], s.sentinel_master))
        self.add("OK" if ok else "FAIL", "sentinel quorum", text)
        return self._agreement(named)

    def _agreement(self, named: dict[str, tuple[str, int] | None]) -> tuple[str, int] | None:
        """The primary the server would use: the one a majority of all
        configured Sentinels names. Any dissent fails the check, but the data
        nodes are still checked against the majority's primary."""
        total = len(self.settings.sentinels)
        primary = majority(named.values(), total)
        answers = {addr for addr in named.values() if addr is not None}
        if not answers:
            self.add("FAIL", "primary", "no Sentinel names a primary")
            return None
        if len(answers) > 1:
            views = ", ".join(f"{s} says {a[0]}:{a[1]}" for s, a in named.items() if a)
            self.add("FAIL", "sentinel agreement",
                     f"Sentinels disagree on the primary ({views}); a failover may be under "
                     "way, or they monitor different sets")
        elif primary is None:
            only = answers.pop()
            self.add("FAIL", "sentinel agreement",
                     f"only {len(named)} of {total} Sentinels name {only[0]}:{only[1]}: no "
                     "majority, so the server answers 'unavailable'")
        else:
            self.add("OK", "sentinel agreement",
                     f"{len(named)} Sentinels name {primary[0]}:{primary[1]} as primary")
        return primary

    # Data nodes ---------------------------------------------------------------

    async def _cluster_primaries(self, cluster: RedisCluster) -> list[tuple[str, int]]:
        try:
            await _step(cluster.initialize())
        except (RedisError, OSError, TimeoutError) as exc:
            self.add("FAIL", "cluster", f"no seed node answers as a cluster node: {why(exc)}")
            return []
        primaries = sorted((node.host, int(node.port)) for node in cluster.get_primaries())
        self.add("OK", "cluster", f"{len(primaries)} shard primaries: "
                 + ", ".join(f"{h}:{p}" for h, p in primaries))
        return primaries

    async def _primary(self, probe: RedisProbe, client: Redis) -> None:
        where = _address(client)
        try:
            await _step(probe.ping(client))
            info = await _step(probe.info(client, "replication"))
        except (RedisError, OSError, TimeoutError) as exc:
            given = bool(client.connection_pool.connection_kwargs.get("password"))
            self.add("FAIL", "primary", f"{where}: {why(exc, password_given=given)}")
            return
        if info.get("role") != "master":
            self.add("FAIL", "primary", f"{where} is a replica, not a primary: writes fail "
                     "(point --redis-url at the primary, or use --sentinel)")
            return
        replicas = _online_replicas(info)
        await self._marker(probe, client, where, len(replicas))
        await self._dedupe(probe, client, replicas)
        self.add(*check_config.quotas(self.settings))
        await self._replicas(probe, replicas)
        if not self.settings.cluster_nodes:  # fences are Sentinel's (storage/fencer.py)
            for finding in await fence_findings(probe, client):
                self.add(*finding)
        await self._persistence(probe, client, f"primary {where}")
        for host, port in replicas:
            node = probe.node(host, port)
            await self._persistence(probe, node, f"replica {host}:{port}")
            await probe.close(node)

    async def _marker(self, probe: RedisProbe, client: Redis, where: str,
                      replicas: int) -> None:
        """The probe write; on a Cluster on this shard primary itself, replicated
        (WAIT) to its online replicas, so each shard is proven, not one."""
        try:
            if not self.settings.cluster_nodes:
                await _step(probe.write_marker("check", 0, client))
                self.add("OK", "primary", f"{where} answers and accepts writes")
                return
            acked = await _step(probe.write_marker_on_shard(
                client, "check", replicas, self.settings.ack_timeout_ms))
        except (RedisError, OSError, TimeoutError) as exc:
            self.add("FAIL", "primary", f"{where} refuses writes: {why(exc)}")
            return
        if acked < replicas:
            self.add("FAIL", "primary", f"{where} accepts writes, but only {acked} of its "
                     f"{replicas} online replicas confirmed one (WAIT)")
        else:
            self.add("OK", "primary", f"{where} answers and accepts writes, "
                     f"confirmed by {acked} replicas")

    async def _dedupe(self, probe: RedisProbe, client: Redis,
                      replicas: list[tuple[str, int]]) -> None:
        """The layout every node supports: a replica without a command the
        primary's script used drops its whole effect (data/dedupe.py)."""
        layouts: dict[str, str] = {}
        try:
            layouts["primary"] = await _step(probe.dedupe_layout(client))
            for host, port in replicas:
                node = probe.node(host, port)
                try:
                    layouts[f"replica {host}:{port}"] = await _step(probe.dedupe_layout(node))
                finally:
                    await probe.close(node)
        except (RedisError, OSError, TimeoutError) as exc:
            self.add("FAIL", "dedupe window", f"cannot ask which commands exist: {why(exc)}")
            return
        self.add(*check_config.dedupe(self.settings.dedupe_window_s, layouts))

    async def _replicas(self, probe: RedisProbe, online: list[tuple[str, int]]) -> None:
        if self.settings.cluster_nodes:  # each shard: a primary and (at least) two replicas
            self.add(*check_config.replicas(online, known=len(online)))
            return
        if not self.settings.sentinel:
            self.add(*check_config.replicas(online, known=None))
            return
        known = 0
        for host, port in self.settings.sentinels:
            client = probe.node(host, port)
            try:
                known = len(await _step(
                    probe.sentinel_replicas(client, self.settings.sentinel_master)))
                break
            except (RedisError, OSError, TimeoutError):
                continue
            finally:
                await probe.close(client)
        self.add(*check_config.replicas(online, known))

    async def _persistence(self, probe: RedisProbe, client: Redis, label: str) -> None:
        try:
            persistence = await _step(probe.info(client, "persistence"))
            memory = await _step(probe.info(client, "memory"))
            fsync = await _step(probe.config_get(client, "appendfsync"))
        except (RedisError, OSError, TimeoutError) as exc:
            self.add("FAIL", f"aof {label}", f"cannot read its settings: {why(exc)}")
            return
        self.add(*check_config.aof(label, persistence))
        self.add(*check_config.fsync(label, fsync, self.settings.durability))
        self.add(*check_config.eviction(label, memory))

def _online_replicas(info: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (str(value["ip"]), int(value["port"]))
        for key, value in info.items()
        if key.startswith(("slave", "replica")) and isinstance(value, dict)
        and value.get("state") == "online"
    ]


def _address(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


async def run(settings: Settings) -> int:
    """Print one line per check; 0 when nothing failed."""
    checker = Checker(settings)
    for result in await checker.run():
        print(result.line(), flush=True)
    print("FAIL: fix the lines marked FAIL" if checker.failed else "all checks passed"
          + (" (see WARN lines)" if any(r.level == "WARN" for r in checker.results) else ""))
    return 1 if checker.failed else 0
