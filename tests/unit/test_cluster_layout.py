"""deploy/redis-cluster without processes: slot split, CLUSTER NODES
parsing, which slots add-shard takes, multi-host rendering."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from deploy.redis_cluster.clusternode import SLOTS, even_ranges, parse_nodes
from deploy.redis_cluster.clusterprobes import Shard
from deploy.redis_cluster.render import ClusterRenderConfig, render
from deploy.redis_cluster.reshard import slots_to_take
from deploy.redis_sentinel.procutil import SetError

NODES = (
    "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5460->-bbb]\n"
    "bbb 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 [5460-<-aaa]\n"
    "ccc 127.0.0.1:7002@17002 slave,fail aaa 0 1 1 disconnected\n"
)


def shard(index: int, *ranges: tuple[int, int]) -> Shard:
    return Shard(index=index, id=f"s{index}", primary=("h", index), replicas=(),
                 slots=ranges, health=())


@pytest.mark.parametrize("count", [1, 3, 4, 7])
def test_even_ranges_cover_every_slot_once_and_differ_by_at_most_one(count: int) -> None:
    ranges = even_ranges(count)
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [e - s + 1 for s, e in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_cluster_nodes_lines_give_roles_slots_and_open_moves() -> None:
    lines = parse_nodes(NODES)
    assert [line.address for line in lines] == [("127.0.0.1", 7000 + i) for i in range(3)]
    assert lines[0].slots == ((0, 5460),) and lines[0].migrating == ("[5460->-bbb]",)
    assert lines[2].master_id == "aaa" and lines[2].failing and not lines[2].is_primary


def test_add_shard_takes_slots_in_proportion_from_the_top_of_each_shard() -> None:
    taken = slots_to_take([shard(0, (0, 99)), shard(1, (100, 399))], 40)
    assert len(taken) == 40
    assert sum(s < 100 for s in taken) == 10
    assert taken[:10] == list(range(90, 100)) and taken[10:] == list(range(370, 400))


def test_add_shard_refuses_to_take_every_slot() -> None:
    with pytest.raises(SetError):
        slots_to_take([shard(0, (0, SLOTS - 1))], SLOTS)


def test_placement_keeps_a_shards_nodes_on_different_hosts() -> None:
    config = ClusterRenderConfig(hosts=["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    for nodes in config.placement():
        assert len({host for host, _ in nodes}) == 3
    primaries = [nodes[0][0] for nodes in config.placement()]
    assert len(set(primaries)) == 3


def test_too_few_hosts_for_the_replicas_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SetError, match="at least 3 hosts"):
        render(ClusterRenderConfig(hosts=["10.0.0.1", "10.0.0.2"]), tmp_path)


def test_render_writes_node_configs_units_and_the_create_command(tmp_path: Path) -> None:
    config = ClusterRenderConfig(hosts=["10.0.0.1", "10.0.0.2", "10.0.0.3"], password="pw")
    render(config, tmp_path)
    conf = (tmp_path / "10.0.0.1" / "redis-7000.conf").read_text()
    for line in ("cluster-enabled yes", "appendonly yes", "appendfsync everysec",
                 'requirepass "pw"', 'masterauth "pw"', "cluster-announce-ip 10.0.0.1",
                 "bind 10.0.0.1 127.0.0.1", "protected-mode no"):
        assert line in conf
    assert (tmp_path / "10.0.0.1" / "redis-7000.conf").stat().st_mode & 0o077 == 0
    unit = (tmp_path / "10.0.0.2" / "chat-redis-cluster@.service").read_text()
    assert "LimitNOFILE=65536" in unit and "cluster-%i/redis.conf" in unit
    server = (tmp_path / "10.0.0.3" / "chat-server@.service").read_text()
    assert f"--cluster-nodes {config.cluster_nodes_arg}" in server
    assert "--redis-password-file /etc/chat/redis-password" in server
    create = (tmp_path / "create.sh").read_text()
    assert f"create --nodes {config.cluster_nodes_arg} --replicas 2" in create
    assert "--password-file /etc/chat/redis-password" in create
    shards = (tmp_path / "shards.txt").read_text().splitlines()
    assert shards[0] == "shard 0: 10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000"


def test_dns_names_are_announced_as_hostnames(tmp_path: Path) -> None:
    render(ClusterRenderConfig(hosts=["r1.example", "r2.example", "r3.example"]), tmp_path)
    conf = (tmp_path / "r1.example" / "redis-7000.conf").read_text()
    assert "cluster-announce-hostname r1.example" in conf
    assert "cluster-preferred-endpoint-type hostname" in conf
