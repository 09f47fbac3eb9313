"""The cluster's scaling model, from the CPU measured per shard node (pure).

A send writes on its recipient's shard only (every key of a user carries
the hash tag {name}), so a shard primary's work grows with the sends to
the users it holds and with nothing else. From a measured step:

    primary CPU-s per send (shard i) = primary CPU-s / sends to shard i
    sends/s one shard primary can take = 1 / that       (one core of its own)
    cluster sends/s = that x shards                     (users spread evenly)

Sends to shard i = delivered x shard i's share of the recipients (the bench
senders spread their sends evenly over the recipients). The model assumes
what this 2-core machine cannot give: every shard primary on cores of its
own, and enough server instances and replica cores that neither limits
first. Measured here every process shares 2 cores, so the cluster's
measured rate is not its capacity; the model is.
"""

from __future__ import annotations

import re
from typing import Any

_NODE = re.compile(r"valkey shard-(\d+) (\S+) \((primary|replica)\)")


def per_shard(step: dict[str, Any], share: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per shard: its primary's CPU per send and what one core of it could take,
    and every node's CPU-s per 1,000 sends to the shard."""
    cpu = step.get("cpu") or {}
    delivered = cpu.get("delivered") or 0
    out: dict[str, dict[str, Any]] = {}
    for name, used in (cpu.get("processes") or {}).items():
        match = _NODE.fullmatch(name)
        if match is None or not share.get(match[1]) or not delivered:
            continue
        shard, node, role = match.groups()
        sends = delivered * share[shard]
        entry = out.setdefault(shard, {"sends": round(sends), "share": share[shard],
                                       "nodes": {}})
        entry["nodes"][f"{node} ({role})"] = round(1000 * used["cpu_s"] / sends, 4)
        if role == "primary":
            per_send = used["cpu_s"] / sends
            entry["primary_cpu_ms_per_send"] = round(1000 * per_send, 4)
            entry["primary_core_pct"] = used["core_pct"]
            entry["sends_per_s_per_primary_core"] = round(1 / per_send) if per_send else None
    return out


def model(step: dict[str, Any] | None, share: dict[str, float], shards: int,
          sentinel_primary_cpu_s_per_1k: float | None) -> dict[str, Any] | None:
    """sends/s per shard primary x shards, from the busiest (slowest) shard
    and from the mean; beside it the Sentinel primary's own ceiling."""
    if step is None:
        return None
    found = per_shard(step, share)
    rates = [e["sends_per_s_per_primary_core"] for e in found.values()
             if e.get("sends_per_s_per_primary_core")]
    if not rates:
        return {"per_shard": found, "step": step.get("label")}
    sentinel = (round(1000 / sentinel_primary_cpu_s_per_1k)
                if sentinel_primary_cpu_s_per_1k else None)
    return {
        "step": step.get("label"), "per_shard": found, "shards": shards,
        "sends_per_s_per_primary_min": min(rates),
        "sends_per_s_per_primary_mean": round(sum(rates) / len(rates)),
        "cluster_sends_per_s_min": min(rates) * shards,
        "cluster_sends_per_s_mean": round(sum(rates) / len(rates)) * shards,
        # One primary of the Sentinel set, the same way: 1 / its CPU-s per send.
        "sentinel_primary_sends_per_s": sentinel,
    }
