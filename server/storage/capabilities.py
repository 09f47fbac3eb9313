"""What a Redis server can do: which dedupe-record layout it supports.

Hash-field expiry (HSETEX on Valkey 9 and Redis >= 8, HPEXPIRE on Redis
7.4) lets each dedupe record expire on its own; older servers get whole
keys per window generation. server/data/dedupe.py asks every node of the
set and uses what all of them support; `python -m server check` too.
"""

from __future__ import annotations

import logging

from redis.exceptions import ResponseError

from server.storage.failures import again_if_closed
from server.storage.redis_conn import Client

log = logging.getLogger(__name__)

#: Dedupe-record layouts, best first.
LAYOUTS = ("hsetex", "hpexpire", "generations")


async def supported_layout(redis: Client) -> str:
    """The best dedupe layout `redis` supports (one of LAYOUTS).

    A node that cannot be reached raises (ConnectionError, TimeoutError):
    not knowing is not "supports nothing"."""
    try:
        # "COMMAND INFO" as one name: redis-py splits it on the wire but finds
        # no reply parser for it, so the raw reply comes back. Its parser for
        # COMMAND fails on the nil a server without these commands answers
        # (TypeError, not a RedisError): Redis 7.0-7.2 could not start.
        info = await again_if_closed(lambda: redis.execute_command(
            "COMMAND INFO", "HSETEX", "HPEXPIRE"))
    except ResponseError as exc:  # COMMAND renamed or disabled: the layout every version has
        log.warning("COMMAND INFO failed (%s): dedupe records use key generations", exc)
        return "generations"
    known = _command_names(info)
    if "hsetex" in known:
        return "hsetex"
    return "hpexpire" if "hpexpire" in known else "generations"


def _command_names(info: object) -> set[str]:
    """Names in a COMMAND INFO reply (redis-py gives a dict, RESP2 raw a list)."""
    if isinstance(info, dict):
        return {str(name).lower() for name, spec in info.items() if spec}
    names: set[str] = set()
    if isinstance(info, list):
        for spec in info:
            if isinstance(spec, list) and spec:
                name = spec[0]
                names.add((name.decode() if isinstance(name, bytes) else str(name)).lower())
    return names
