"""A write that reaches a node demoted under it (a primary turned replica in a
failover) answers `unavailable`, which clients retry, not `internal`, which
ends their session: seen as a receiver's session ending in the middle of
test_rejoin's double failover, its later messages never fetched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from server import keys
from server.data.commit import GroupCommitter
from server.store import Store
from server.wire import errors
from tests.procs import RedisNode, free_port


@pytest.fixture
def replica(tmp_path: Path, redis_node: RedisNode) -> Iterator[RedisNode]:
    node = RedisNode(datadir=tmp_path / "replica", port=free_port(),
                     replicaof=redis_node.address)
    node.start()
    yield node
    node.stop()


WRITES = {
    "ack": lambda store: store.ack("bob", "1-0"),  # a merged script's per-call error
    "send": lambda store: store.send(sender="alice", to="bob", body="x", msg_id="m1",
                                     now_ms=1),
    "register": lambda store: store.register("carol", "hash", gen="g", now_ms=1),
}


@pytest.mark.parametrize("required", [0, 1], ids=["no-wait", "with-wait"])
@pytest.mark.parametrize("write", sorted(WRITES))
async def test_a_write_to_a_node_that_is_a_replica_now_answers_unavailable(
        redis_url: str, replica: RedisNode, write: str, required: int) -> None:
    primary = redis.Redis.from_url(redis_url)
    primary.hset(keys.account("bob"), mapping={"pw": "hash", "gen": "g"})  # bob exists
    primary.wait(1, 5000)
    primary.close()
    client = Redis.from_url(replica.url, decode_responses=True)
    # Without a replica to wait for (acks, a degraded set) no INCR goes along,
    # whose READONLY would fail the whole pipeline: the script's own is all.
    committer = GroupCommitter(client, required_replicas=lambda: required, ack_timeout_ms=100)
    committer.start()
    try:
        store = Store(client, committer, max_inbox=10, dedupe_layout="hsetex")
        await store.load_scripts()
        with pytest.raises(errors.Unavailable):
            await WRITES[write](store)
    finally:
        await committer.close()
        await client.aclose()
