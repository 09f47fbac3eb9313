"""Before a Redis node starts: make it a fenced replica of the current primary.

A node restarted from its own config may believe it is the primary (it was,
when it died) or follow a node that is no longer primary. If the Sentinel
majority names another primary, its config file is pointed at that primary
and given `replica-priority 0` (the fence), after the priority to restore is
recorded on the primary in the hash the chat servers use (server/keys.py
FENCES). The chat servers lift the fence once the node is in sync with the
primary (server/storage/fencer.py), so the node can never win a promotion while it
lacks acknowledged writes. See docs/failure-model.md.

Used by LocalSet.restart_node and, on a multi-host install, by the
chat-redis unit (ExecStartPre):

    python -m deploy.redis_sentinel.rejoin --conf /var/lib/chat/redis/redis.conf \\
        --address 10.0.0.1:6379 --master-name chat \\
        --sentinel 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379 \\
        [--password-file /etc/chat/redis-password]

Without a Sentinel majority the file is left as Sentinel last wrote it. The
node is fenced only where the servers' Redis user may run CONFIG SET (probed
on the primary: every node runs the same config and ACL), or nobody could
lift the fence, and only once the record reached every connected replica.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if not __package__:
    # Run as a file (units rendered before deploy/ was a package): the
    # repository root on sys.path, as `python -m deploy.redis_sentinel.rejoin` has it.
    sys.path[0] = str(Path(__file__).resolve().parents[2])
    __package__ = "deploy.redis_sentinel"

import redis

from server.keys import FENCES
from server.storage.fencing import is_refusal
from server.storage.sentinel_majority import majority

DEFAULT_PRIORITY = 100
Address = tuple[str, int]


def majority_primary(sentinels: list[Address], master_name: str) -> Address | None:
    """The primary a majority of `sentinels` names, or None."""
    views: list[Address] = []
    for host, port in sentinels:
        try:
            with redis.Redis(host=host, port=port, socket_timeout=1.0,
                             socket_connect_timeout=1.0, decode_responses=True) as client:
                got = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name)
        except (redis.RedisError, OSError):
            continue
        if got:
            views.append((str(got[0]), int(got[1])))
    return majority(views, len(sentinels))


def configured_priority(conf: Path) -> int:
    """The replica-priority the config file gives (Redis's default if none)."""
    for line in conf.read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0].lower() in ("replica-priority", "slave-priority"):
            return int(words[1])
    return DEFAULT_PRIORITY


def rewrite(conf: Path, primary: Address, priority: int | None) -> None:
    """Point the file at `primary`; set replica-priority to `priority` (None: keep)."""
    drop: tuple[str, ...] = ("replicaof ", "slaveof ")
    if priority is not None:
        drop += ("replica-priority ", "slave-priority ")
    kept = [line for line in conf.read_text().splitlines()
            if not line.strip().lower().startswith(drop)]
    kept.append(f"replicaof {primary[0]} {primary[1]}")
    if priority is not None:
        kept.append(f"replica-priority {priority}")
    conf.write_text("\n".join(kept) + "\n")


def may_config(client: Any) -> bool:
    """The servers' Redis user may run CONFIG SET (what lifting a fence
    takes): setting replica-priority to the value it has is the probe."""
    try:
        value = client.config_get("replica-priority").get("replica-priority")
        client.config_set("replica-priority", value)
    except redis.ResponseError as exc:
        if is_refusal(exc):
            return False
        raise
    return True


def fence_via(client: Any, conf: Path, primary: Address, addr: str) -> str:
    """Rewrite `conf` as a (fenced, if liftable) replica of `primary`, whose
    client is `client`; says what it did."""
    where = f"{primary[0]}:{primary[1]}"
    priority = configured_priority(conf)
    recorded = client.hget(FENCES, addr)
    if priority == 0 and recorded is None:
        # An operator's deliberate priority 0: never fenced, never lifted.
        rewrite(conf, primary, None)
        return f"replica of {where} (priority 0 kept: operator's)"
    if not may_config(client):
        # Nobody could lift a fence: none, and an earlier one is undone here.
        rewrite(conf, primary, int(recorded) if recorded is not None else None)
        if recorded is not None:
            client.hdel(FENCES, addr)
        return f"replica of {where}, not fenced: the Redis user may not run CONFIG SET"
    if priority > 0:
        created = client.hsetnx(FENCES, addr, priority)
        # The record must survive a failover like an acked write.
        replicas = int(client.info("replication")["connected_slaves"])
        reached = int(client.execute_command("WAIT", replicas, 1000))
        if reached < replicas:
            if created:
                client.hdel(FENCES, addr)
            rewrite(conf, primary, None)
            return (f"replica of {where}, not fenced: the record reached {reached} of "
                    f"{replicas} replicas")
    rewrite(conf, primary, 0)
    return f"fenced replica of {where} (priority restored once in sync)"


def fence_before_start(conf: Path, me: Address, sentinels: list[Address], master_name: str,
                       password: str | None = None) -> str:
    """Make the node at `me` (stopped) start as a fenced replica; says what it did."""
    primary = majority_primary(sentinels, master_name)
    if primary is None:
        return "no Sentinel majority names a primary: config left as it is"
    if primary == me:
        return "this node is the primary the Sentinels name: config left as it is"
    try:
        with redis.Redis(host=primary[0], port=primary[1], password=password,
                         socket_timeout=2.0, socket_connect_timeout=1.0,
                         decode_responses=True) as client:
            return fence_via(client, conf, primary, f"{me[0]}:{me[1]}")
    except (redis.RedisError, OSError) as exc:
        # No record, no fence (a fence nobody could lift); still not a stale primary.
        rewrite(conf, primary, None)
        return f"replica of {primary[0]}:{primary[1]}, not fenced ({exc})"


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", required=True, type=Path, help="the node's redis.conf")
    parser.add_argument("--address", required=True, help="host:port the node announces")
    parser.add_argument("--sentinel", required=True, help="host:port,host:port,...")
    parser.add_argument("--master-name", default="chat")
    parser.add_argument("--password-file", type=Path)
    args = parser.parse_args(argv)
    password = (args.password_file.read_text().splitlines()[0].strip()
                if args.password_file else None)
    said = fence_before_start(args.conf, _address(args.address),
                              [_address(s) for s in args.sentinel.split(",") if s],
                              args.master_name, password)
    print(f"rejoin: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
