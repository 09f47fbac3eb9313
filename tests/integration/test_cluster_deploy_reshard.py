"""add-shard moves slots onto a new shard: keys move with them, none lost,
and a move cut short is finished by running add-shard again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from deploy.redis_cluster.localcluster import LocalCluster
from deploy.redis_cluster.reshard import PLAN_FILE, add_shard
from deploy.redis_cluster.slotmove import node_ids, open_slots
from tests.cluster_fixture import MakeRedisCluster

pytestmark = pytest.mark.slow

MOVED = 120  # slots; each SETSLOT writes nodes.conf, so keep the test short


def ask_to_unknown_node(exc: AttributeError) -> bool:
    """redis-py 8.1 (sync and asyncio clients) follows an ASK only to a node in
    its slot map; a new shard's primary, until it owns a slot, is not in it,
    and the redirect dereferences None (redis/redis-py#4015, fix in PR #4214).
    A command that fails so was not executed."""
    return "'NoneType' object has no attribute" in str(exc)


class Writer:
    """Keeps writing new keys through a cluster client; remembers what was acked."""

    def __init__(self, cluster: LocalCluster) -> None:
        host, port = cluster.seeds[0]
        self.client = RedisCluster(host=host, port=port, decode_responses=True)
        self.acked: dict[str, str] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.retries = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                key, value = f"w:{i}", f"v{i}"
                try:
                    self.client.set(key, value)
                except AttributeError as exc:
                    if not ask_to_unknown_node(exc):
                        raise
                    self.retries += 1
                    time.sleep(0.01)
                    continue  # not acked: resent, as a client resends `unavailable`
                self.acked[key] = value
                i += 1
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.client.close()


@pytest.fixture
def small_cluster(make_redis_cluster: MakeRedisCluster) -> LocalCluster:
    """2 shards x (primary + 1 replica): the smallest cluster a move needs."""
    return make_redis_cluster(shards=2, replicas=1)


@pytest.fixture
def reader(small_cluster: LocalCluster) -> Iterator[RedisCluster]:
    host, port = small_cluster.seeds[0]
    client = RedisCluster(host=host, port=port, decode_responses=True)
    yield client
    client.close()


def _fill(client: RedisCluster, count: int, prefix: str = "k:") -> dict[str, str]:
    data = {f"{prefix}{i}": f"v{i}" for i in range(count)}
    client.mset_nonatomic(data)
    return data


def _missing(client: RedisCluster, data: dict[str, str]) -> list[str]:
    keys = list(data)
    got = client.mget_nonatomic(keys)
    return [k for k, v in zip(keys, got, strict=True) if v != data[k]]


def test_moving_slots_under_a_writer_loses_no_key(
        small_cluster: LocalCluster, reader: RedisCluster) -> None:
    before = _fill(reader, 20_000)
    with Writer(small_cluster) as writer:
        shard = add_shard(small_cluster, slots=MOVED)
    assert writer.error is None, writer.error
    print(f"{len(writer.acked)} writes acked, {writer.retries} resent after redis-py#4015")
    assert shard.slot_count == MOVED
    moved = {s for start, end in shard.slots for s in range(start, end + 1)}
    assert sum(key_slot(k.encode()) in moved for k in before) > 50, "moved slots held keys"
    assert any(key_slot(k.encode()) in moved for k in writer.acked), "the writer hit them too"
    assert _missing(reader, before) == []
    assert _missing(reader, writer.acked) == []
    assert small_cluster.problems() == []
    assert len(small_cluster.shards()) == 3


def test_add_shard_gives_the_new_shard_its_replicas(small_cluster: LocalCluster) -> None:
    shard = add_shard(small_cluster, slots=10, replicas=2)
    assert len(shard.replicas) == 2
    assert small_cluster.problems() == []


def test_rerun_finishes_a_slot_left_importing_and_migrating(
        small_cluster: LocalCluster, reader: RedisCluster) -> None:
    data = _fill(reader, 20_000)

    def interrupt(done: int, total: int, keys: int) -> None:
        if done < total:  # after the first group of slots
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        add_shard(small_cluster, slots=MOVED, progress=interrupt)
    assert (small_cluster.root / PLAN_FILE).exists()
    # Cut a planned slot short by hand: opened on both sides, half its keys moved.
    slot = json.loads((small_cluster.root / PLAN_FILE).read_text())["slots"][-1]
    tag = next(t for t in (f"t{n}" for n in range(1_000_000)) if key_slot(t.encode()) == slot)
    data.update(_fill(reader, 10, prefix=f"{{{tag}}}:"))
    new_primary = small_cluster.nodes[-2]
    source = next(small_cluster.node(s.primary) for s in small_cluster.shards()
                  if s.primary and any(a <= slot <= b for a, b in s.slots))
    ids = {node: node_id for node_id, node in node_ids(small_cluster.nodes).items()}
    with new_primary.client() as target_client, source.client() as source_client:
        target_client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        source_client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[new_primary])
        keys = source_client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        source_client.execute_command("MIGRATE", new_primary.host, new_primary.port, "", 0,
                                      5000, "KEYS", *keys[:5])
    assert slot in open_slots(small_cluster.nodes)

    shard = add_shard(small_cluster)  # the same plan, resumed
    assert shard.slot_count == MOVED
    assert open_slots(small_cluster.nodes) == {}
    assert not (small_cluster.root / PLAN_FILE).exists()
    assert _missing(reader, data) == []
    assert small_cluster.problems() == []


def test_moving_slots_authenticates_migrate_when_the_cluster_has_a_password(
        make_redis_cluster: MakeRedisCluster) -> None:
    cluster = make_redis_cluster(shards=2, replicas=0, password="s3cret")
    host, port = cluster.seeds[0]
    with RedisCluster(host=host, port=port, password="s3cret", decode_responses=True) as client:
        data = _fill(client, 20_000)
        shard = add_shard(cluster, slots=40, replicas=0)
        assert shard.slot_count == 40
        assert _missing(client, data) == []
    with cluster.node(shard.primary or ("", 0)).client() as new_primary:
        assert new_primary.dbsize() > 0
