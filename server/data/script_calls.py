"""Lua script calls as the group committer sends them: one pipeline per batch.

Part of the store layer: chat data is reached through store.py, its parts in
data/, and the committer that runs their scripts.

A batch's calls go to the primary as ONE pipeline, followed by the INCR and
WAIT/WAITAOF that make it durable; neighbouring calls of a mergeable script
(send.lua, ack.lua) go as one EVALSHA (on a Cluster: only calls of one slot).
Script sources and their loading by
the app live in store.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from server import keys
from server.storage.redis_conn import Client

#: One script call: the script, its KEYS, its ARGV, and whether it may be
#: merged with the calls of the same script next to it (see script_batch).
ScriptCall = tuple[AsyncScript, list[str], list[Any], bool]
#: A call as sent: script, KEYS, ARGV, how many calls it carries (0: not mergeable).
SentCall = tuple[AsyncScript, list[str], list[Any], int]


def merge_calls(calls: list[ScriptCall], slot_of: Callable[[str], int] | None = None
                ) -> list[SentCall]:
    """Neighbouring mergeable calls of one script as one call.

    `slot_of` (a Cluster's key slot function): merge only calls whose keys
    are in one slot, since a script's keys must all live on one slot there.
    Every key of one call is in one slot (the user's hash tag), so the first
    key stands for the call.
    """
    groups: list[SentCall] = []
    slots: list[int | None] = []
    for script, call_keys, args, merge in calls:
        slot = slot_of(call_keys[0]) if slot_of is not None and call_keys else None
        last = groups[-1] if groups else None
        if merge and last is not None and last[3] and last[0] is script and slots[-1] == slot:
            last[1].extend(call_keys)
            last[2].extend(args)
            groups[-1] = (script, last[1], last[2], last[3] + 1)
        else:
            groups.append((script, list(call_keys), list(args), 1 if merge else 0))
            slots.append(slot)
    return groups


async def script_batch(
    redis: Client, calls: list[ScriptCall], *, wait: tuple[Any, ...] | None,
    commit_key: str = keys.COMMIT, slot_of: Callable[[str], int] | None = None,
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
    build and parse and for Redis to dispatch. On a Cluster node, `commit_key`
    is a key of that node's slots and `slot_of` keeps merged calls in one slot.
    """
    groups = merge_calls(calls, slot_of)
    async with redis.pipeline(transaction=False) as pipe:
        for script, call_keys, args, _ in groups:
            pipe.evalsha(script.sha, len(call_keys), *call_keys, *args)
        if wait is not None:
            pipe.incr(commit_key)
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


async def load_script(redis: Client, script: AsyncScript) -> None:
    await redis.script_load(script.script)
