"""The protocol suite's core over a Redis Cluster: the same tests, two instances on the cluster.

The tests are the ones that run over one Redis (imported, so they are the
same code); only `two_servers` differs: both instances get --cluster-nodes.
Users spread over the three shards (their hash tags), so sends, acks,
list_users and deletes cross shards.
"""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from deploy.redis_cluster.localcluster import LocalCluster
from tests.conftest import StartServer
from tests.integration.test_accounts import (  # noqa: F401 (collected here again)
    test_delete_while_logged_in_on_two_instances_closes_the_other_sessions,
    test_messages_sent_by_a_deleted_user_stay_with_recipients,
    test_paging_sees_each_existing_name_once_while_names_are_added,
    test_pattern_treats_brackets_and_backslash_literally,
    test_reregistered_name_starts_with_empty_inbox_and_new_password,
)
from tests.integration.test_chat import (  # noqa: F401
    test_ack_is_cumulative_and_removes_from_inbox,
    test_message_sent_via_instance_a_reaches_user_on_instance_b_live,
    test_offline_message_is_counted_at_login_and_fetched_oldest_first,
    test_push_reaches_every_connection_of_the_recipient,
    test_replies_come_in_request_order,
    test_resend_with_same_msg_id_returns_first_reply_and_stores_one_copy,
    test_resume_restores_session_on_another_instance_and_logout_revokes,
    test_same_msg_id_from_different_senders_are_two_messages,
    test_sending_to_oneself_is_delivered,
)
from tests.integration.test_sessions import (  # noqa: F401
    test_logout_ends_the_same_token_on_the_other_instance,
    test_logout_everywhere_ends_every_token_of_the_account,
)
from tests.procs import ServerProc

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster_nodes(redis_cluster: LocalCluster) -> str:
    """The shared cluster's --cluster-nodes, every primary flushed."""
    host, port = redis_cluster.seeds[0]
    client = RedisCluster(host=host, port=port)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    client.close()
    return redis_cluster.cluster_nodes_arg


@pytest.fixture
def two_servers(cluster_nodes: str, start_server: StartServer) -> tuple[ServerProc, ServerProc]:
    """Two chat server instances over the same Redis Cluster."""
    return (start_server("--cluster-nodes", cluster_nodes),
            start_server("--cluster-nodes", cluster_nodes))
