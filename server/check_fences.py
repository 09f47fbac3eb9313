"""`python -m server check`: can every fence record on the primary be lifted?

A fence record (keys.FENCES) says a node runs at replica-priority 0 until a
chat server lifts it with CONFIG SET. Where the servers' Redis user may not
run CONFIG SET on that node (an ACL, a renamed command) nobody will, and
the node stays unpromotable for good: that is a FAIL.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.storage.redis_probe import RedisProbe

#: Longest one node may take to answer.
NODE_TIMEOUT_S = 5.0

Finding = tuple[str, str, str]  # level, name, detail


async def fence_findings(probe: RedisProbe, primary: Redis) -> list[Finding]:
    """One line per fence record (or one saying there is none)."""
    try:
        records = await asyncio.wait_for(probe.fence_records(primary), NODE_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return [("WARN", "fences", f"cannot read the fence records: {exc}")]
    if not records:
        return [("OK", "fences", "no node is fenced")]
    return [await _one(probe, addr, priority) for addr, priority in sorted(records.items())]


async def _one(probe: RedisProbe, addr: str, priority: str) -> Finding:
    host, _, port = addr.rpartition(":")
    name = f"fence {addr}"
    node = probe.node(host, int(port))
    try:
        allowed = await asyncio.wait_for(probe.may_config_set(node), NODE_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return ("WARN", name, f"the node does not answer ({type(exc).__name__}); the servers "
                f"lift it to replica-priority {priority} once it is back in sync")
    finally:
        await probe.close(node)
    if not allowed:
        return ("FAIL", name, "cannot be lifted: the Redis user may not run CONFIG SET there "
                f"(ACL or renamed command); set replica-priority {priority} on it by hand "
                f"and HDEL chat:fences {addr} (docs/operations.md)")
    return ("OK", name, f"the servers lift it to replica-priority {priority} once in sync")
