"""Every knob of the server in one frozen dataclass.

Each field has a command-line flag (`--ack-timeout-ms`) and an environment
variable (`CHAT_ACK_TIMEOUT_MS`); the flag wins over the variable, which wins
over the default. `help` in the field metadata is what `--help` prints;
`low` (inclusive), `above` (exclusive) and `high` are the field's bounds,
checked by `validate` through `bound_problem`: every numeric knob's range is
written once, beside the knob.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
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
    port: int = _opt(8765, "port to listen on (0 picks a free one and logs it)",
        low=0, high=65535, out_of_range="is not a port number")
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
    cluster_nodes: str | None = _opt(
        None, "Redis Cluster seed nodes host:port,host:port,... (any few; the rest are "
        "discovered): shard the chat over the cluster's primaries")
    redis_password_file: str | None = _opt(None, "file holding the Redis (and Sentinel) password")
    redis_tls_ca: str | None = _opt(None, "CA file: connect to Redis over TLS")
    redis_max_connections: int = _opt(
        64, "most connections to the Redis primary (at least "
        f"{MIN_REDIS_CONNECTIONS}); a request beyond them waits for a free one, up to "
        "the ack timeout + 2 s, then answers 'unavailable'",
        low=MIN_REDIS_CONNECTIONS, why="the pub/sub listener, 4 group-commit batches and the "
        "health probe hold connections for long")
    ack_timeout_ms: int = _opt(1000, "how long a send waits for replica acks before 'unavailable'",
        low=1)
    durability: str = _opt(
        "replicas", "replicas: WAIT for in-sync replicas; fsync: also WAITAOF (appendfsync always)",
        choices=("replicas", "fsync"),
    )
    topology_interval_ms: int = _opt(500, "how often replica and Sentinel state is re-read",
        low=1)
    sweep_interval_ms: int = _opt(5000, "how often connected users' inboxes are re-checked",
        low=1)

    # Limits (PROTOCOL.md defaults)
    max_frame_bytes: int = _opt(65536, "largest frame accepted; larger closes with 1009",
        low=1)
    max_body_chars: int = _opt(4096, "longest message body",
        low=1)
    max_list_limit: int = _opt(1000, "largest `limit` of list_users and fetch",
        low=1)
    max_inbox: int = _opt(10000, "most undelivered messages per user; more answers too_large",
        low=1)
    max_pending_per_sender: int = _opt(
        1000, "most undelivered messages from one sender in one inbox; more answers too_large",
        low=1)
    max_inbox_bytes: int = _opt(
        16 * 1024 * 1024, "most body bytes (UTF-8) undelivered in one inbox; more answers "
        "too_large",
        low=1)
    dedupe_window_s: int = _opt(
        3600, "how long a resent msg_id is recognised (announced as dedupe_window_ms); "
        f"{MIN_DEDUPE_WINDOW_S} s to {MAX_DEDUPE_WINDOW_S // 86400} days",
        low=MIN_DEDUPE_WINDOW_S, high=MAX_DEDUPE_WINDOW_S)
    requests_per_second: float = _opt(200.0, "per-connection request rate (token bucket)",
        above=0)
    request_burst: int = _opt(400, "per-connection burst above the rate",
        low=1)
    max_connections_per_ip: int = _opt(1000, "concurrent connections from one address",
        low=1)
    max_outbox_frames: int = _opt(1000, "frames queued to one slow client before it is cut off",
        low=1)
    max_outbox_bytes: int = _opt(
        8 * 1024 * 1024,
        "bytes waiting for one client, the transport's write buffer included; beyond it "
        "the server reads none of its requests, and a push that does not fit closes it",
        low=1)
    max_reply_bytes: int = _opt(
        1024 * 1024, "largest fetch / list_users reply frame; fewer items beyond it "
        "(fetch: always at least one message)",
        low=MIN_REPLY_BYTES, why="one message of the longest body must fit")
    write_timeout_s: float = _opt(
        30.0, "a client whose pending bytes do not drain for this long is closed (1008)",
        above=0, high=MAX_TIMEOUT_S)
    open_timeout_s: float = _opt(
        10.0, "a connection that has not finished the WebSocket handshake by then is closed",
        above=0, high=MAX_TIMEOUT_S)
    ping_interval_s: float = _opt(20.0, "seconds between keepalive pings",
        above=0, high=MAX_TIMEOUT_S)
    ping_timeout_s: float = _opt(
        20.0, "a peer that does not answer a ping within this is closed and its session freed",
        above=0, high=MAX_TIMEOUT_S)
    hash_workers: int = _opt(
        0, "threads hashing passwords (argon2); 0 means one per CPU",
        low=0, high=MAX_HASH_WORKERS, why="0 is one per CPU")
    max_hash_queue: int = _opt(
        64, "password hashes waiting for a thread; beyond it register/login/delete_account "
        "answer rate_limited at once",
        low=1)
    max_hash_per_address: int = _opt(
        4, "password hashes running or waiting per client address; beyond it rate_limited",
        low=1)

    # Accounts
    token_ttl_s: int = _opt(7 * 24 * 3600, "lifetime of a session token",
        low=1)
    login_max_failures: int = _opt(10, "failed logins per name and address before rate_limited",
        low=1)
    login_max_failures_per_address: int = _opt(
        100, "failed logins from one address, over all names, before rate_limited",
        low=1)
    login_window_s: int = _opt(60, "window of the failed-login count",
        low=1)
    argon2_time_cost: int = _opt(3, "argon2id iterations",
        low=1)
    argon2_memory_kib: int = _opt(65536, "argon2id memory in KiB",
        low=8)
    argon2_parallelism: int = _opt(4, "argon2id lanes",
        low=1)

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
        "every attempt for it answers rate_limited",
        low=1, high=1_000_000)
    max_sessions_per_user: int = _opt(
        100, "live tokens per account; a login beyond it revokes the oldest ('replaced')",
        low=1, high=1_000_000)

    # Lifecycle
    shutdown_grace_ms: int = _opt(10000, "longest drain on SIGTERM before closing anyway",
        low=1)
    retry_after_ms: int = _opt(1000, "retry_after_ms sent in the shutdown event",
        low=1)

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
        return _addresses(self.sentinel)

    @property
    def cluster_seeds(self) -> list[tuple[str, int]]:
        return _addresses(self.cluster_nodes)

    def validate(self) -> None:
        """Raise ValueError with one plain sentence for a bad configuration."""
        given = [flag for flag, value in (("--redis-url", self.redis_url),
                                          ("--sentinel", self.sentinel),
                                          ("--cluster-nodes", self.cluster_nodes)) if value]
        if len(given) != 1:
            raise ValueError("give exactly one of --redis-url, --sentinel and --cluster-nodes"
                             + (f" (got {' and '.join(given)})" if given else ""))
        for flag, spec in (("--sentinel", self.sentinel), ("--cluster-nodes", self.cluster_nodes)):
            for item in (spec or "").split(",") if spec else ():
                host, sep, port = item.strip().rpartition(":")
                if not sep or not host or not port.isdigit():
                    raise ValueError(f"{flag} entry {item!r} is not host:port")
        for flag, value in (("--public-urls", self.public_urls),
                            ("--allowed-origins", self.allowed_origins)):
            try:
                origins.parse_url_list(value)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        for f in fields():
            problem = bound_problem(f, getattr(self, f.name))
            if problem:
                raise ValueError(problem)
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


def _addresses(spec: str | None) -> list[tuple[str, int]]:
    """host:port,host:port,... as (host, port) pairs."""
    out: list[tuple[str, int]] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if item:
            host, _, port = item.rpartition(":")
            out.append((host, int(port)))
    return out


def fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Settings)


def value_type(f: dataclasses.Field[Any]) -> type:
    """The type a flag's text converts to: int for `int`, str for `str | None`."""
    hint = typing.get_type_hints(Settings)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint  # type: ignore[no-any-return]


def bound_problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    """The sentence saying why `value` is outside the field's bounds, or None.

    The bounds are the field's metadata (`low`, `above`, `high`), the one
    place every numeric knob's range is written.
    """
    meta, flag = f.metadata, "--" + f.name.replace("_", "-")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    low, above, high = meta.get("low"), meta.get("above"), meta.get("high")
    inside = (low is None or value >= low) and (above is None or value > above) \
        and (high is None or value <= high)
    if inside:
        return None
    if "out_of_range" in meta:
        return f"{flag} {value} {meta['out_of_range']}"
    if low is not None and high is not None:
        rule = f"must be {low} to {high:g}"
    elif above is not None and high is not None:
        rule = f"must be more than {above} and at most {high:g}"
    elif above is not None:
        rule = f"must be more than {above}"
    else:
        rule = f"must be at least {low}"
    return f"{flag} {rule}" + (f": {meta['why']}" if "why" in meta else "")
