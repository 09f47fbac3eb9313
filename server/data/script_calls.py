"""Lua script calls as the group committer sends them: one pipeline per batch.

Part of the store layer: chat data is reached through store.py, its parts in
data/, and the committer that runs their scripts.

A batch's calls go to the primary as ONE pipeline, followed by the INCR and
WAIT/WAITAOF that make it durable; neighbouring calls of a mergeable script
(send.lua, ack.lua) go as one EVALSHA. Script sources and their loading by
the app live in store.py.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from server import keys

#: One script call: the script, its KEYS, its ARGV, and whether it may be
#: merged with the calls of the same script next to it (see script_batch).
ScriptCall = tuple[AsyncScript, list[str], list[Any], bool]


async def script_batch(
    redis: Redis, calls: list[ScriptCall], *, wait: tuple[Any, ...] | None,
) -> tuple[list[Any], Any]:
    """Run scripts and then INCR + `wait` (WAIT/WAITAOF) as ONE pipeline.

    The results of the calls (errors as values) and the wait's answer
    (None without a wait). EVALSHA directly: redis-py's script objects in a
    pipeline cost a SCRIPT EXISTS round trip each time; the committer
    handles NOSCRIPT. The INCR makes WAIT, which counts its own connection's
    writes, cover every script of the batch, also one that only read.

    Neighbouring mergeable calls of one script go as ONE EVALSHA with their
    KEYS and ARGV concatenated; such a script (send.lua) answers a list with
    one reply per call. Per message that saves a command for redis-py to
    build and parse and for Redis to dispatch.
    """
    groups: list[tuple[AsyncScript, list[str], list[Any], int]] = []  # count 0: not merged
    for script, call_keys, args, merge in calls:
        last = groups[-1] if groups else None
        if merge and last is not None and last[3] and last[0] is script:
            last[1].extend(call_keys)
            last[2].extend(args)
            groups[-1] = (script, last[1], last[2], last[3] + 1)
        else:
            groups.append((script, list(call_keys), list(args), 1 if merge else 0))
    async with redis.pipeline(transaction=False) as pipe:
        for script, call_keys, args, _ in groups:
            pipe.evalsha(script.sha, len(call_keys), *call_keys, *args)
        if wait is not None:
            pipe.incr(keys.COMMIT)
            pipe.execute_command(*wait)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    for result in results[len(groups):]:
        if isinstance(result, Exception):
            raise result
    replies: list[Any] = []
    for (_, _, _, count), result in zip(groups, results, strict=False):
        if not count:
            replies.append(result)
        elif isinstance(result, Exception):
            replies.extend([result] * count)
        elif len(result) != count:  # a broken script: every call of it failed
            replies.extend([ResponseError(f"{len(result)} replies to {count} calls")] * count)
        else:
            replies.extend(result)
    return replies, (results[-1] if wait is not None else None)


async def load_script(redis: Redis, script: AsyncScript) -> None:
    await redis.script_load(script.script)
