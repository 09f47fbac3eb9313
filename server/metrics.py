"""Prometheus metrics of one server instance (served at GET /metrics)."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# 0.0.4 is the text format every Prometheus version scrapes.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

CONNECTIONS = Gauge("chat_connections", "Open WebSocket connections", registry=REGISTRY)
SESSIONS = Gauge("chat_sessions", "Connections logged in as a user", registry=REGISTRY)
OPS = Counter(
    "chat_ops_total", "Requests by op and result (ok or error code)", ["op", "result"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "chat_send_seconds", "send request to ok reply, including the durable wait",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
WAIT_SECONDS = Histogram(
    "chat_wait_seconds", "WAIT/WAITAOF round trip of one group commit",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
COMMIT_BATCH = Histogram(
    "chat_commit_batch_size", "Writes per group commit (one WAIT covers them all)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=REGISTRY,
)
WAIT_TIMEOUTS = Counter(
    "chat_wait_timeouts_total", "Group commits whose replicas did not ack in time",
    registry=REGISTRY,
)
REQUIRED_REPLICAS = Gauge(
    "chat_required_replicas", "Replicas every durable write waits for", registry=REGISTRY,
)
FENCED_REPLICAS = Gauge(
    "chat_fenced_replicas",
    "Returning Redis nodes fenced now (replica-priority 0 until in sync, not waited for)",
    registry=REGISTRY,
)
PUSHES = Counter("chat_pushes_total", "Messages pushed to connections", registry=REGISTRY)
PUSH_REPAIRS = Counter(
    "chat_push_repairs_total", "Messages pushed by a resync or sweep instead of pub/sub",
    registry=REGISTRY,
)
SESSIONS_ENDED = Counter(
    "chat_sessions_ended_total", "Connections told their session ended elsewhere (session_ended)",
    ["reason"], registry=REGISTRY,
)
PUBSUB_RECONNECTS = Counter(
    "chat_pubsub_reconnects_total", "Times the pub/sub listener reconnected", registry=REGISTRY,
)
FAILOVERS = Counter(
    "chat_failovers_seen_total", "Changes of the Redis primary seen by this instance",
    registry=REGISTRY,
)
SLOW_CONSUMERS = Counter(
    "chat_slow_consumers_total", "Connections cut off for not reading", registry=REGISTRY,
)
BACKPRESSURE = Counter(
    "chat_backpressure_total",
    "Times a client's pending replies passed --max-outbox-bytes, so its requests waited",
    registry=REGISTRY,
)
HASH_REJECTED = Counter(
    "chat_hash_rejected_total",
    "Password checks answered rate_limited because hashing was at its bound",
    ["bound"], registry=REGISTRY,
)
CONNECTIONS_REFUSED = Counter(
    "chat_connections_refused_total",
    "TCP connections closed at accept: over --max-connections-per-ip",
    registry=REGISTRY,
)
INBOX_SIZE = Histogram(
    "chat_inbox_size", "Sampled inbox lengths of connected users",
    buckets=(0, 1, 10, 100, 1000, 10000), registry=REGISTRY,
)
INBOX_MAX = Gauge(
    "chat_inbox_sampled_max", "Longest inbox in the latest sample of connected users",
    registry=REGISTRY,
)
INBOX_LIMIT = Gauge(
    "chat_inbox_limit", "Configured --max-inbox; a full inbox answers too_large",
    registry=REGISTRY,
)
USERS_ONLINE = Gauge(
    "chat_users_online", "Distinct users logged in on this instance", registry=REGISTRY,
)

# Health (what /healthz answers, as numbers an alert can use) -------------------

HEALTH = Gauge(
    "chat_health", "1 for the state /healthz reports now, 0 for the others", ["status"],
    registry=REGISTRY,
)
HEALTH_STATES = ("ok", "degraded", "unavailable", "draining")
WRITE_AGE = Gauge(
    "chat_primary_write_age_seconds",
    "Seconds since the last successful probe write to the Redis primary",
    registry=REGISTRY,
)
PUBSUB_PING_AGE = Gauge(
    "chat_pubsub_ping_age_seconds",
    "Seconds since this instance last received its own ping through pub/sub",
    registry=REGISTRY,
)
SENTINELS_CONFIGURED = Gauge(
    "chat_sentinels_configured", "Sentinels given with --sentinel (0: single Redis)",
    registry=REGISTRY,
)
SENTINELS_REACHABLE = Gauge(
    "chat_sentinels_reachable", "Sentinels that answered the latest topology check",
    registry=REGISTRY,
)
PROBE_FAILURES = Counter(
    "chat_probe_write_failures_total", "Health probe writes the primary refused or missed",
    registry=REGISTRY,
)


@functools.cache
def op_counter(op: str, result: str) -> Counter:
    """The OPS child for (op, result), looked up once: labels() is slow per request."""
    return OPS.labels(op, result)


def exposition() -> tuple[bytes, str]:
    """The metrics page and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4
