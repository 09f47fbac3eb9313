"""Pure parts of operability: health decisions, check verdicts, JSON logs, alert rules."""

from __future__ import annotations

import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError

from server import check_config, keys, logs, metrics
from server.check import Checker, why
from server.delivery.fanout import Delivery
from server.health import Health
from server.settings import Settings
from server.storage.redis_conn import RedisHandles
from server.storage.redis_probe import MARKER_TTL_MS, RedisProbe
from server.storage.snapshot import Snapshot
from server.storage.topology import Topology
from tests.procs import ROOT


class FakeTopology:
    def __init__(self, **snap: Any) -> None:
        self.now = Snapshot(**snap)


class FakeDelivery:
    def __init__(self, alive: bool) -> None:
        self.alive = alive
        self.last_ping = time.monotonic() if alive else 0.0

    def listener_alive(self, max_age_s: float) -> bool:
        return self.alive


def make_health(*, alive: bool = True, wrote: bool = True, sentinel: bool = False,
                cluster: bool = False, **snap: Any) -> Health:
    health = Health(
        topology=cast(Topology, FakeTopology(**snap)),
        delivery=cast(Delivery, FakeDelivery(alive)),
        probe=cast(RedisProbe, None), instance_id="i-1", interval_s=0.5,
        sample_interval_s=5, sentinel_mode=sentinel, users=lambda: [], cluster_mode=cluster,
    )
    if wrote:
        health.last_write = time.monotonic()
    return health


def test_healthz_is_ok_only_when_writes_and_pubsub_both_work() -> None:
    code, body = make_health(primary_ok=True, primary="h:1").status()
    assert code == HTTPStatus.OK and body["status"] == "ok" and body["instance"] == "i-1"
    assert metrics.HEALTH.labels("ok")._value.get() == 1


def test_healthz_is_503_when_the_primary_accepted_no_recent_write() -> None:
    health = make_health(primary_ok=True, wrote=False)
    health.write_error = "ResponseError: MISCONF Errors writing to the AOF file"
    code, body = health.status()
    assert code == HTTPStatus.SERVICE_UNAVAILABLE and "MISCONF" in body["reason"]


def test_healthz_is_503_when_the_listener_is_deaf_though_redis_is_fine() -> None:
    code, body = make_health(primary_ok=True, alive=False).status()
    assert code == HTTPStatus.SERVICE_UNAVAILABLE and "pub/sub" in body["reason"]


def test_healthz_is_503_without_primary_or_sentinel_majority_and_while_draining() -> None:
    assert make_health(primary_ok=False, reason="refused").status()[1]["reason"] \
        == "no Redis primary: refused"
    _, body = make_health(primary_ok=True, sentinels_total=3, sentinels_reachable=1).status()
    assert "1 of 3 Sentinels" in body["reason"]
    health = make_health(primary_ok=True)
    health.draining = True
    assert health.status() == (HTTPStatus.SERVICE_UNAVAILABLE, {
        "status": "draining", "reason": "stopping: reconnect elsewhere", "instance": "i-1"})


def test_healthz_is_degraded_on_a_cluster_when_some_shard_has_no_replica_in_sync() -> None:
    code, body = make_health(cluster=True, primary_ok=True, primary="a:1,b:1",
                             required_replicas=0).status()
    assert code == HTTPStatus.OK and body["status"] == "degraded" and "shard" in body["reason"]
    assert "sentinels" not in body


def test_healthz_is_degraded_with_no_replica_in_sentinel_mode_only() -> None:
    snap: dict[str, Any] = {"primary_ok": True, "sentinels_total": 3, "sentinels_reachable": 3}
    code, body = make_health(sentinel=True, **snap).status()
    assert code == HTTPStatus.OK and body["status"] == "degraded" and body["sentinels"] == "3/3"
    assert make_health(primary_ok=True, sentinel=False).status()[1]["status"] == "ok"


def test_check_explains_auth_failures_in_plain_words() -> None:
    assert "requires a password" in why(AuthenticationError("x"), password_given=False)
    assert "wrong password" in why(AuthenticationError("invalid password"))
    assert "requires a password" in why(Exception("NOAUTH Authentication required."))
    assert why(ConnectionError("Error 111")) == "ConnectionError: Error 111"


def test_check_verdicts_on_persistence_settings() -> None:
    verdicts = [
        check_config.aof("n", {"aof_enabled": 0}),
        check_config.aof("n", {"aof_enabled": 1, "aof_last_write_status": "err"}),
        check_config.aof("n", {"aof_enabled": 1, "aof_last_write_status": "ok"}),
        check_config.fsync("n", "no", "replicas"),
        check_config.fsync("n", "everysec", "replicas"),
        check_config.fsync("n", None, "replicas"),
    ]
    assert [level for level, _, _ in verdicts] == ["FAIL", "FAIL", "OK", "FAIL", "OK", "WARN"]
    level, _, detail = check_config.fsync("n", "everysec", "fsync")
    assert level == "FAIL" and "always" in detail


def test_check_fails_a_node_that_may_evict_keys() -> None:
    def level(policy: str, limit: int) -> str:
        return check_config.eviction("n", {"maxmemory_policy": policy, "maxmemory": limit})[0]
    assert level("allkeys-lru", 9) == "FAIL"
    assert level("allkeys-lru", 0) == "OK"  # no limit: nothing is ever evicted
    assert level("noeviction", 9) == "OK"


def test_check_warns_when_one_sender_may_fill_a_whole_inbox() -> None:
    fill = Settings(redis_url="redis://x", max_inbox=10, max_pending_per_sender=10)
    assert check_config.quotas(fill)[0] == "WARN"
    assert check_config.quotas(Settings(redis_url="redis://x"))[0] == "OK"


def test_check_warns_when_a_replica_lacks_the_primarys_dedupe_layout() -> None:
    level, _, text = check_config.dedupe(60, {"primary": "hsetex",
                                              "replica 10.0.0.2:6379": "generations"})
    assert level == "WARN"
    assert "key generations" in text and "replica 10.0.0.2:6379 generations" in text
    assert check_config.dedupe(60, {"primary": "hsetex", "replica a:1": "hsetex"}) == (
        "OK", "dedupe window", "60 s; records expire per field (hsetex)")


def test_check_fails_when_sentinels_disagree_on_the_primary() -> None:
    checker = Checker(Settings(sentinel="a:1,b:2"))
    assert checker._agreement({"a:1": ("h", 1), "b:2": ("h", 2)}) is None
    assert checker.failed and "disagree" in checker.results[0].line()
    agreeing = Checker(Settings(sentinel="a:1,b:2"))
    assert agreeing._agreement({"a:1": ("h", 1), "b:2": ("h", 1)}) == ("h", 1)


def test_check_takes_the_majority_primary_and_still_fails_on_a_dissenting_sentinel() -> None:
    checker = Checker(Settings(sentinel="a:1,b:2,c:3"))
    assert checker._agreement({"a:1": ("h", 1), "b:2": ("h", 1), "c:3": ("h", 2)}) == ("h", 1)
    assert checker.failed and "disagree" in checker.results[0].line()


def test_check_names_no_primary_when_agreeing_sentinels_are_too_few() -> None:
    checker = Checker(Settings(sentinel="a:1,b:2,c:3"))
    assert checker._agreement({"a:1": ("h", 1)}) is None
    assert checker.failed and "no majority" in checker.results[0].line()


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord("server.ws_handler", logging.INFO, __file__, 1,
                               "op=%s", ("send",), None)
    record.instance = "i-1"
    record.__dict__.update(op="send", user="alice", result="ok", latency_ms=1.5)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["msg"] == "op=send" and line["instance"] == "i-1"
    assert (line["op"], line["user"], line["result"], line["latency_ms"]) == \
        ("send", "alice", "ok", 1.5)
    assert "args" not in line and "lineno" not in line


def test_instance_name_defaults_to_host_port_or_hostname_pid() -> None:
    assert logs.instance_name("web-1", "h", 1) == "web-1"
    assert logs.instance_name("", "h", 8765) == "h:8765"
    assert logs.instance_name("", "h", 0).endswith(f":{__import__('os').getpid()}")


def test_alert_rules_and_dashboard_use_only_metrics_the_server_exports() -> None:
    exported = {m.name for m in metrics.REGISTRY.collect()}
    exported |= {f"{n}{s}" for n in exported for s in ("_total", "_bucket", "_count", "_sum")}
    exported.add("up")
    rules = (ROOT / "deploy/prometheus/chat-alerts.yml").read_text()
    exprs = re.findall(r"expr: (.+)", rules)
    dashboard = json.loads((ROOT / "deploy/grafana/chat-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) > 20
    used = {name for e in exprs for name in re.findall(r"\b(chat_[a-z_]+|up)\b(?=[{\s)]|$)", e)}
    assert used - exported == set()
    assert {"chat_send_seconds_bucket", "chat_health", "chat_pubsub_ping_age_seconds"} <= used


async def test_health_probe_writes_its_marker_under_the_key_keys_py_names(redis: Redis) -> None:
    probe = RedisProbe(Settings(redis_url="redis://unused"), RedisHandles(primary=redis))
    await probe.write_marker("i-1", 1234)
    assert await redis.get(keys.health_marker("i-1")) == "1234"
    assert keys.health_marker("i-1") == f"{keys.PREFIX}:health:i-1"
    assert 0 < await redis.pttl(keys.health_marker("i-1")) <= MARKER_TTL_MS
