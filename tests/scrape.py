"""HTTP helpers for tests: /healthz, /readyz and /metrics of a running server."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """Status and body of a GET (4xx/5xx included, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def healthz(base: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of /healthz; (0, "unreachable") when nothing answers."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as reply:
            return int(reply.status), dict(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(json.loads(exc.read()))
    except OSError as exc:
        return 0, {"status": "unreachable", "reason": str(exc)}


async def aget(url: str, timeout: float = 5.0) -> tuple[int, str]:
    return await asyncio.to_thread(get, url, timeout)


async def health(base: str, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    status, body = await aget(base + path)
    return status, dict(json.loads(body))


async def wait_health(
    base: str, want: Callable[[int, dict[str, Any]], bool], timeout: float = 10.0,
    path: str = "/healthz",
) -> tuple[int, dict[str, Any], float]:
    """Poll until `want(status, body)`; returns them and the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    status, body = await health(base, path)
    while not want(status, body):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still {status} {body} after {timeout} s")
        await asyncio.sleep(0.1)
        status, body = await health(base, path)
    return status, body, time.monotonic() - started


async def metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    status, text = await aget(base + "/metrics")
    assert status == 200, text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    """One sample's value (0.0 when absent, like a counter not yet touched)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
