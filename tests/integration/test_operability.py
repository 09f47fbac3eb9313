"""Operability with real processes: /healthz, /readyz, /metrics and JSON logs.

Graceful stop is in test_graceful_stop.py, `python -m server check` in
test_check.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis

from deploy.redis_sentinel.sentinelset import LocalSet
from tests.conftest import StartServer
from tests.procs import RedisNode, free_port
from tests.scrape import health, metrics, value, wait_health
from tests.wsclient import Peer

FAST = ("--topology-interval-ms", "200", "--sweep-interval-ms", "300")


def ok(status: int, body: dict[str, object]) -> bool:
    return status == 200 and body["status"] == "ok"


async def test_healthz_turns_503_within_seconds_of_a_redis_kill_and_200_after_restart(
    tmp_path: Path, start_server: StartServer,
) -> None:
    node = RedisNode(datadir=tmp_path / "redis", port=free_port())
    node.start()
    try:
        server = start_server(*FAST, redis_url=node.url)
        await wait_health(server.http_url, ok)
        ready_status, ready = await health(server.http_url, "/readyz")
        assert ready_status == 200 and ready["ready"] is True
        node.kill()
        _, body, took = await wait_health(server.http_url, lambda s, b: s == 503)
        assert took < 5.0
        assert body["status"] == "unavailable" and body["reason"]
        ready_status, ready = await health(server.http_url, "/readyz")
        assert ready_status == 503 and ready["ready"] is False
        node.start()
        await wait_health(server.http_url, ok, timeout=15)
    finally:
        node.stop()


async def test_pubsub_connection_killed_by_redis_reconnects_and_pushes_again(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server(*FAST, redis_url=redis_url)
    await wait_health(server.http_url, ok)
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    admin = redis.Redis.from_url(redis_url)
    try:
        assert admin.client_kill_filter(_type="pubsub") >= 1
    finally:
        admin.close()
    await wait_health(server.http_url, ok)
    await alice.send_message("bob", "after the kill")
    assert (await bob.event())["message"]["body"] == "after the kill"


async def test_deaf_listener_makes_healthz_503_while_ping_and_writes_still_work(
    redis_url: str, start_server: StartServer,
) -> None:
    """Centrifugo #1189: PING and writes fine, subscriber deaf; /healthz must not say ok."""
    server = start_server(*FAST, redis_url=redis_url)
    await wait_health(server.http_url, ok)
    admin = redis.Redis.from_url(redis_url)
    try:
        # The listener is cut off and may not SUBSCRIBE again; PUBLISH still works.
        admin.acl_setuser("default", enabled=True, commands=["-subscribe"])
        admin.client_kill_filter(_type="pubsub")
        admin.set("still-writable", 1)
        _, body, _ = await wait_health(server.http_url, lambda s, b: s == 503, timeout=8)
        assert "pub/sub" in str(body["reason"]), body
    finally:
        admin.acl_setuser("default", enabled=True, commands=["+subscribe"])
        admin.close()
    await wait_health(server.http_url, ok, timeout=8)


async def test_every_metric_appears_and_moves_with_traffic(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server(*FAST, redis_url=redis_url)
    await wait_health(server.http_url, ok)
    before = await metrics(server.http_url)
    alice, bob = await Peer.connect(server.url), await Peer.connect(server.url)
    await alice.register_login("alice")
    await bob.register_login("bob")
    for i in range(3):
        await alice.send_message("bob", f"unacked {i}")
        await bob.event()
    await alice.request("send", to="nobody", body="x", msg_id="m-x")
    await wait_health(server.http_url, ok)  # a probe round has passed
    after = await metrics(server.http_url)
    for _ in range(30):  # the inbox sample runs every sweep interval
        if value(after, "chat_inbox_sampled_max") >= 3:
            break
        await asyncio.sleep(0.2)
        after = await metrics(server.http_url)
    assert value(after, "chat_connections") == value(before, "chat_connections") + 2
    assert value(after, "chat_sessions") == 2 and value(after, "chat_users_online") == 2
    assert value(after, "chat_ops_total", op="send", result="ok") == 3
    assert value(after, "chat_ops_total", op="send", result="no_such_user") == 1
    assert value(after, "chat_ops_total", op="login", result="ok") == 2
    assert value(after, "chat_send_seconds_count") == 3
    assert value(after, "chat_pushes_total") - value(before, "chat_pushes_total") == 3
    assert value(after, "chat_inbox_size_count") > 0
    assert value(after, "chat_inbox_sampled_max") == 3
    assert value(after, "chat_inbox_limit") == 10000
    assert value(after, "chat_health", status="ok") == 1
    assert value(after, "chat_health", status="draining") == 0
    assert value(after, "chat_primary_write_age_seconds") < 2
    assert value(after, "chat_pubsub_ping_age_seconds") < 2
    for name in ("chat_wait_seconds_count", "chat_wait_timeouts_total",
                 "chat_pubsub_reconnects_total", "chat_failovers_seen_total",
                 "chat_required_replicas", "chat_push_repairs_total",
                 "chat_slow_consumers_total", "chat_sentinels_reachable",
                 "chat_probe_write_failures_total"):
        assert (name, ()) in after, f"{name} missing from /metrics"


async def test_json_logs_carry_instance_op_user_result_and_latency_as_fields(
    redis_url: str, start_server: StartServer,
) -> None:
    server = start_server("--log-format", "json", "--log-level", "DEBUG",
                          redis_url=redis_url, name="json-logger")
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    await alice.send_message("alice", "note to self")
    await alice.request("login", username="alice", password="wrong password")
    await alice.close()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines and all(line["instance"] == "json-logger" for line in lines)
    sends = [line for line in lines if line.get("op") == "send"]
    assert sends, lines
    assert sends[0]["user"] == "alice" and sends[0]["result"] == "ok"
    assert isinstance(sends[0]["latency_ms"], float)
    failed = [line for line in lines if line.get("result") == "bad_credentials"]
    assert failed and failed[0]["level"] == "INFO" and failed[0]["op"] == "login"


async def test_sentinel_mode_reports_failover_wait_latency_and_degraded(
    fresh_sentinel_set: LocalSet, start_server: StartServer,
) -> None:
    local = fresh_sentinel_set
    server = start_server(*FAST, "--sentinel", local.sentinel_arg, "--log-format", "json")
    _, body, _ = await wait_health(server.http_url, ok, timeout=15)
    assert body["sentinels"] == "3/3" and body["replicas_in_sync"] == 2
    alice = await Peer.connect(server.url)
    await alice.register_login("alice")
    await alice.send_message("alice", "waited for")
    before = await metrics(server.http_url)
    assert value(before, "chat_wait_seconds_count") >= 1
    assert value(before, "chat_sentinels_reachable") == 3
    old = local.primary_address()
    local.sentinels[0].client().sentinel_failover(local.master_name)
    new = local.wait_for_failover(old, timeout=30)
    await wait_health(server.http_url,
                      lambda s, b: ok(s, b) and b["primary"] == f"{new[0]}:{new[1]}", timeout=20)
    after = await metrics(server.http_url)
    for _ in range(50):  # the listener moves to the new primary at its next poll
        if value(after, "chat_pubsub_reconnects_total") > 0:
            break
        await asyncio.sleep(0.1)
        after = await metrics(server.http_url)
    assert value(after, "chat_failovers_seen_total") == 1
    assert value(after, "chat_pubsub_reconnects_total") > value(
        before, "chat_pubsub_reconnects_total")
    failovers = [json.loads(line) for line in server.log().splitlines()
                 if '"old_primary"' in line]
    assert len(failovers) == 1
    assert failovers[0]["old_primary"] == f"{old[0]}:{old[1]}"
    assert failovers[0]["new_primary"] == f"{new[0]}:{new[1]}"
    for i, node in enumerate(local.nodes):
        if node.address != new:
            local.kill_node(i)
    _, body, _ = await wait_health(server.http_url, lambda s, b: b["status"] == "degraded",
                                   timeout=15)
    assert body["replicas_in_sync"] == 0 and "replica" in str(body["reason"])
