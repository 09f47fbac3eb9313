"""Connections to Redis: one URL, or the primary that Sentinel names.

Both kinds retry connection errors, timeouts and READONLY (a demoted
primary) with a short exponential backoff, then give up so the caller can
answer `unavailable` and the client can retry elsewhere.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError

from server.settings import Settings

RETRY_ERRORS: list[type[Exception]] = [ConnectionError, TimeoutError, ReadOnlyError]


def read_password(path: str | None) -> str | None:
    """The password in a file (first line); a flag value would show in `ps`."""
    if not path:
        return None
    try:
        return Path(path).read_text().splitlines()[0].strip() or None
    except (OSError, IndexError) as exc:
        raise ValueError(f"cannot read the Redis password from {path}: {exc}") from exc


@dataclass
class RedisHandles:
    """The clients one server instance uses."""

    primary: Redis
    #: One client per Sentinel, to count which of them answer.
    sentinels: list[Redis] = field(default_factory=list)
    sentinel: Sentinel | None = None

    async def close(self) -> None:
        await self.primary.aclose()
        for client in self.sentinels:
            await client.aclose()


def _common(settings: Settings, password: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "decode_responses": True,
        "password": password,
        # Longer than a WAIT, which blocks its connection up to ack_timeout_ms.
        "socket_timeout": settings.ack_timeout_ms / 1000 + 2.0,
        "socket_connect_timeout": 1.0,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        "retry_on_error": RETRY_ERRORS,
        "health_check_interval": 5,
    }
    if settings.redis_tls_ca:
        kwargs["ssl"] = True
        kwargs["ssl_ca_certs"] = settings.redis_tls_ca
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return kwargs


def connect(settings: Settings) -> RedisHandles:
    """Build (lazily connecting) clients for the configured Redis."""
    password = read_password(settings.redis_password_file)
    common = _common(settings, password)
    if settings.redis_url:
        return RedisHandles(primary=Redis.from_url(settings.redis_url, **common))
    sentinel_kwargs: dict[str, Any] = {
        "password": password,
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
        "decode_responses": True,
    }
    if settings.redis_tls_ca:
        sentinel_kwargs.update(ssl=True, ssl_ca_certs=settings.redis_tls_ca)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        settings.sentinels, sentinel_kwargs=sentinel_kwargs, **common
    )
    primary = sentinel.master_for(settings.sentinel_master, **common)
    probes = [Redis(host=host, port=port, **sentinel_kwargs) for host, port in settings.sentinels]
    return RedisHandles(primary=primary, sentinels=probes, sentinel=sentinel)
