"""Every knob of the server in one frozen dataclass.

Each field has a command-line flag (`--ack-timeout-ms`) and an environment
variable (`CHAT_ACK_TIMEOUT_MS`); the flag wins over the variable, which wins
over the default. `help` in the field metadata is what `--help` prints.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from typing import Any

from server.wire import origins
from server.wire.client_address import Network, parse_networks

#: The fewest connections the Redis primary pool may have. Some connections
#: stay checked out for long: the pub/sub listener for its whole life, each
#: of the up to 4 group-commit batches for up to one WAIT (--ack-timeout-ms),
#: the health probe's write; below 8 a burst of requests could find none
#: left for seconds.
MIN_REDIS_CONNECTIONS = 8

#: Bounds of --dedupe-window-s: clients stop resending a second before the
#: window ends, so shorter makes no sense; longer than a week holds records
#: (rate x window) for retries no client still makes.
MIN_DEDUPE_WINDOW_S = 2
MAX_DEDUPE_WINDOW_S = 7 * 24 * 3600

#: Bytes one body character can take in UTF-8.
MAX_UTF8_BYTES = 4


#: A fetch reply must hold one message of the longest body, each character
#: escaped to six bytes at worst (a control character as \\u0000).
MIN_REPLY_BYTES = 64 * 1024
#: Upper bound of the timeout flags (a day): beyond it they protect nothing.
MAX_TIMEOUT_S = 86400.0
#: Each hashing thread may hold --argon2-memory-kib at once.
MAX_HASH_WORKERS = 256


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True, kw_only=True)
class Settings:
    # Network
    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8765, "port to listen on (0 picks a free one and logs it)")
    tls_cert: str | None = _opt(None, "certificate file (PEM): serve wss:// and https://")
    tls_key: str | None = _opt(None, "private key file (PEM) for --tls-cert")
    instance_id: str = _opt("", "name of this instance in logs and metrics (default host:port)")
    log_format: str = _opt("text", "log line format", choices=("text", "json"))
    log_level: str = _opt("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    # Web client (GET /)
    public_urls: str | None = _opt(
        None, "comma-separated http(s):// URLs at which browsers reach the instances (this one "
        "and its peers); the page moves to them when its instance goes away")
    allowed_origins: str | None = _opt(
        None, "comma-separated origins whose pages may open /ws (default: this instance's "
        "own origin and those of --public-urls); requests without Origin are accepted")

    # Redis
    redis_url: str | None = _opt(None, "a single Redis, e.g. redis://127.0.0.1:6379/0")
    sentinel: str | None = _opt(None, "Sentinel addresses host:port,host:port,...")
    sentinel_master: str = _opt("chat", "the master name Sentinel monitors")
    redis_password_file: str | None = _opt(None, "file holding the Redis (and Sentinel) password")
    redis_tls_ca: str | None = _opt(None, "CA file: connect to Redis over TLS")
    redis_max_connections: int = _opt(
        64, "most connections to the Redis primary (at least "
        f"{MIN_REDIS_CONNECTIONS}); a request beyond them waits for a free one, up to "
        "the ack timeout + 2 s, then answers 'unavailable'")
    ack_timeout_ms: int = _opt(1000, "how long a send waits for replica acks before 'unavailable'")
    durability: str = _opt(
        "replicas", "replicas: WAIT for in-sync replicas; fsync: also WAITAOF (appendfsync always)",
        choices=("replicas", "fsync"),
    )
    topology_interval_ms: int = _opt(500, "how often replica and Sentinel state is re-read")
    sweep_interval_ms: int = _opt(5000, "how often connected users' inboxes are re-checked")

    # Limits (PROTOCOL.md defaults)
    max_frame_bytes: int = _opt(65536, "largest frame accepted; larger closes with 1009")
    max_body_chars: int = _opt(4096, "longest message body")
    max_list_limit: int = _opt(1000, "largest `limit` of list_users and fetch")
    max_inbox: int = _opt(10000, "most undelivered messages per user; more answers too_large")
    max_pending_per_sender: int = _opt(
        1000, "most undelivered messages from one sender in one inbox; more answers too_large")
    max_inbox_bytes: int = _opt(
        16 * 1024 * 1024, "most body bytes (UTF-8) undelivered in one inbox; more answers "
        "too_large")
    dedupe_window_s: int = _opt(
        3600, "how long a resent msg_id is recognised (announced as dedupe_window_ms); "
        f"{MIN_DEDUPE_WINDOW_S} s to {MAX_DEDUPE_WINDOW_S // 86400} days")
    requests_per_second: float = _opt(200.0, "per-connection request rate (token bucket)")
    request_burst: int = _opt(400, "per-connection burst above the rate")
    max_connections_per_ip: int = _opt(1000, "concurrent connections from one address")
    max_outbox_frames: int = _opt(1000, "frames queued to one slow client before it is cut off")
    max_outbox_bytes: int = _opt(
        8 * 1024 * 1024,
        "bytes waiting for one client, the transport's write buffer included; beyond it "
        "the server reads none of its requests, and a push that does not fit closes it")
    max_reply_bytes: int = _opt(
        1024 * 1024, "largest fetch / list_users reply frame; fewer items beyond it "
        "(fetch: always at least one message)")
    write_timeout_s: float = _opt(
        30.0, "a client whose pending bytes do not drain for this long is closed (1008)")
    open_timeout_s: float = _opt(
        10.0, "a connection that has not finished the WebSocket handshake by then is closed")
    ping_interval_s: float = _opt(20.0, "seconds between keepalive pings")
    ping_timeout_s: float = _opt(
        20.0, "a peer that does not answer a ping within this is closed and its session freed")
    hash_workers: int = _opt(
        0, "threads hashing passwords (argon2); 0 means one per CPU")
    max_hash_queue: int = _opt(
        64, "password hashes waiting for a thread; beyond it register/login/delete_account "
        "answer rate_limited at once")
    max_hash_per_address: int = _opt(
        4, "password hashes running or waiting per client address; beyond it rate_limited")

    # Accounts
    token_ttl_s: int = _opt(7 * 24 * 3600, "lifetime of a session token")
    login_max_failures: int = _opt(10, "failed logins per name and address before rate_limited")
    login_max_failures_per_address: int = _opt(
        100, "failed logins from one address, over all names, before rate_limited")
    login_window_s: int = _opt(60, "window of the failed-login count")
    argon2_time_cost: int = _opt(3, "argon2id iterations")
    argon2_memory_kib: int = _opt(65536, "argon2id memory in KiB")
    argon2_parallelism: int = _opt(4, "argon2id lanes")

    # Who the client is, who the operator is (server/wire/client_address.py)
    trusted_proxies: str = _opt(
        "", "CIDR list of reverse proxies whose X-Forwarded-For names the client "
        "(e.g. 127.0.0.1/32 for nginx on this host); empty: the TCP peer is the client")
    admin_allow: str = _opt(
        "127.0.0.1/32,::1/128", "CIDR list of client addresses that may read /metrics and "
        "the detailed /healthz and /readyz (judged after --trusted-proxies)")

    # Sessions
    login_max_failures_per_user: int = _opt(
        100, "failed logins for one name over all addresses per --login-window-s before "
        "every attempt for it answers rate_limited")
    max_sessions_per_user: int = _opt(
        100, "live tokens per account; a login beyond it revokes the oldest ('replaced')")

    # Lifecycle
    shutdown_grace_ms: int = _opt(10000, "longest drain on SIGTERM before closing anyway")
    retry_after_ms: int = _opt(1000, "retry_after_ms sent in the shutdown event")

    @functools.cached_property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @functools.cached_property
    def admin_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.admin_allow)

    @property
    def hash_threads(self) -> int:
        """--hash-workers, with 0 resolved to the CPU count."""
        return self.hash_workers or os.cpu_count() or 1

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for item in (self.sentinel or "").split(","):
            item = item.strip()
            if item:
                host, _, port = item.rpartition(":")
                out.append((host, int(port)))
        return out

    def validate(self) -> None:
        """Raise ValueError with one plain sentence for a bad configuration."""
        if bool(self.redis_url) == bool(self.sentinel):
            raise ValueError("give exactly one of --redis-url and --sentinel")
        if self.sentinel:
            for item in self.sentinel.split(","):
                host, sep, port = item.strip().rpartition(":")
                if not sep or not host or not port.isdigit():
                    raise ValueError(f"--sentinel entry {item!r} is not host:port")
        for flag, value in (("--public-urls", self.public_urls),
                            ("--allowed-origins", self.allowed_origins)):
            try:
                origins.parse_url_list(value)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port {self.port} is not a port number")
        for name in ("ack_timeout_ms", "max_frame_bytes", "max_body_chars", "max_list_limit",
                     "max_inbox", "token_ttl_s", "login_window_s", "max_outbox_frames",
                     "login_max_failures_per_address", "max_outbox_bytes",
                     "topology_interval_ms", "sweep_interval_ms", "request_burst",
                     "max_connections_per_ip", "argon2_time_cost", "argon2_parallelism",
                     "max_pending_per_sender", "max_hash_queue", "max_hash_per_address"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.redis_max_connections < MIN_REDIS_CONNECTIONS:
            raise ValueError(
                f"--redis-max-connections must be at least {MIN_REDIS_CONNECTIONS}: the "
                "pub/sub listener, 4 group-commit batches and the health probe hold "
                "connections for long")
        if not MIN_DEDUPE_WINDOW_S <= self.dedupe_window_s <= MAX_DEDUPE_WINDOW_S:
            raise ValueError(
                f"--dedupe-window-s must be {MIN_DEDUPE_WINDOW_S} to {MAX_DEDUPE_WINDOW_S}")
        if self.max_inbox_bytes < MAX_UTF8_BYTES * self.max_body_chars:
            raise ValueError(
                f"--max-inbox-bytes must hold one message of --max-body-chars "
                f"({MAX_UTF8_BYTES * self.max_body_chars} bytes at {MAX_UTF8_BYTES} per character)")
        for flag, spec in (("--trusted-proxies", self.trusted_proxies),
                           ("--admin-allow", self.admin_allow)):
            try:
                parse_networks(spec)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
        for name in ("login_max_failures_per_user", "max_sessions_per_user"):
            if not 1 <= getattr(self, name) <= 1_000_000:
                raise ValueError(f"--{name.replace('_', '-')} must be between 1 and 1000000")
        if self.max_reply_bytes < MIN_REPLY_BYTES:
            raise ValueError(f"--max-reply-bytes must be at least {MIN_REPLY_BYTES}: one "
                             "message of the longest body must fit")
        for name in ("write_timeout_s", "open_timeout_s", "ping_interval_s", "ping_timeout_s"):
            if not 0 < getattr(self, name) <= MAX_TIMEOUT_S:
                raise ValueError(f"--{name.replace('_', '-')} must be more than 0 and at most "
                                 f"{MAX_TIMEOUT_S:.0f}")
        if not 0 <= self.hash_workers <= MAX_HASH_WORKERS:
            raise ValueError(f"--hash-workers must be 0 (one per CPU) to {MAX_HASH_WORKERS}")
        if not self.requests_per_second > 0:
            raise ValueError("--requests-per-second must be more than 0")


def fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Settings)
