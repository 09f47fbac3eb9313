"""`python -m server check`: what the configuration and the nodes' settings mean.

Pure verdicts, no Redis: given the server's Settings and what a node
answered (INFO sections, CONFIG values, which dedupe layout it supports),
each function says OK, WARN or FAIL with what is wrong in plain words.
server/check.py asks the Redis set and hands the answers here.
"""

from __future__ import annotations

import ssl
from typing import Any

from server.check_fences import Finding
from server.settings import Settings
from server.storage.capabilities import LAYOUTS


def tls_files(settings: Settings) -> list[Finding]:
    """Whether the certificate loads with its key (nothing when TLS is off)."""
    cert, key = settings.tls_cert, settings.tls_key
    if not (cert and key):
        return []
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return [("FAIL", "tls", f"cannot load {cert} / {key}: {exc}")]
    return [("OK", "tls", f"certificate {cert} loads with its key")]


def quotas(settings: Settings) -> Finding:
    s = settings
    text = (f"{s.max_inbox} messages, {s.max_inbox_bytes} body bytes, "
            f"{s.max_pending_per_sender} from one sender per inbox")
    if s.max_pending_per_sender >= s.max_inbox:
        return ("WARN", "inbox quotas", f"{text}: one sender can fill a whole inbox "
                "(set --max-pending-per-sender below --max-inbox)")
    return ("OK", "inbox quotas", text)


def dedupe(window_s: int, layouts: dict[str, str]) -> Finding:
    """How long dedupe records live, given the layout each node supports
    ("primary", "replica HOST:PORT" -> layout): the weakest is the one used."""
    layout = max(layouts.values(), key=LAYOUTS.index)
    mixed = "" if len(set(layouts.values())) == 1 else (
        f" (nodes differ: {', '.join(f'{n} {v}' for n, v in layouts.items())}; records use "
        "what every node has until all are upgraded)")
    if layout == "generations":
        return ("WARN", "dedupe window", f"{window_s} s; no hash-field expiry here (Redis "
                f"< 7.4): records are kept one to two windows (key generations){mixed}")
    return ("WARN" if mixed else "OK", "dedupe window",
            f"{window_s} s; records expire per field ({layout}){mixed}")


def replicas(online: list[tuple[str, int]], known: int | None) -> Finding:
    """`online` replicas against the `known` ones Sentinel lists (None: single Redis)."""
    listed = ", ".join(f"{h}:{p}" for h, p in online) or "none"
    if known is None:
        return ("OK" if online else "WARN", "replicas", f"{len(online)} connected ({listed}); "
                "a single Redis has no automatic failover")
    if not online:
        return ("WARN", "replicas", "no replica connected: writes rest on one node "
                "(/healthz says degraded) and a primary crash stops the service")
    if len(online) < max(known, 2):
        return ("WARN", "replicas", f"{len(online)} online ({listed}) of {max(known, 2)}"
                " expected: one more node loss leaves no copy")
    return ("OK", "replicas", f"{len(online)} online ({listed})")


def eviction(label: str, memory: dict[str, Any]) -> Finding:
    policy, limit = memory.get("maxmemory_policy", "?"), int(memory.get("maxmemory", 0))
    if policy == "noeviction" or not limit:
        return ("OK", f"eviction {label}", f"maxmemory {limit or 'unlimited'}, "
                f"policy {policy}: keys are never evicted")
    return ("FAIL", f"eviction {label}", f"maxmemory-policy {policy} evicts keys: "
            "accounts and undelivered messages can vanish; set noeviction")


def aof(label: str, persistence: dict[str, Any]) -> Finding:
    if str(persistence.get("aof_enabled")) != "1":
        return ("FAIL", f"aof {label}", "appendonly is off: a crash of every node loses "
                "acknowledged messages; set appendonly yes")
    if persistence.get("aof_last_write_status", "ok") != "ok":
        return ("FAIL", f"aof {label}", "the last AOF write failed (disk full or "
                "read-only?): the node refuses writes until it can write again")
    return ("OK", f"aof {label}", "appendonly yes")


def fsync(label: str, value: str | None, durability: str) -> Finding:
    """The node's appendfsync (None: CONFIG refused) against --durability."""
    want_always = durability == "fsync"
    if value is None:
        return ("WARN", f"appendfsync {label}", "cannot read it (CONFIG is renamed or "
                "disabled); make sure the node's config says appendfsync "
                + ("always" if want_always else "everysec or always"))
    if value == "no" or (want_always and value != "always"):
        need = "always (--durability fsync)" if want_always else "everysec or always"
        return ("FAIL", f"appendfsync {label}", f"is {value}; needs {need}")
    return ("OK", f"appendfsync {label}", value)
