"""The one redis-py cluster-client failure we answer as retryable: an ASK to an unknown node.

redis-py 8.1's cluster client (asyncio, as the sync one) follows an ASK
redirect only to a node already in its slot map. A new shard's primary is
not in it until it owns a slot (CLUSTER SLOTS lists slot owners only), so
during the first slot moves of `clusterctl add-shard` a command on a key
already moved dereferences None before it is sent: AttributeError
"'NoneType' object has no attribute 'execute_command'", the command not run
(redis/redis-py#4015, fix proposed in PR #4214). A pipeline resends the
command alone and raises the same error with the pipeline's prefix.

Nothing else of redis-py is matched: the message and the innermost frame
(redis/asyncio/cluster.py) must both say it. tests/integration/
test_cluster_redirects.py fails loudly when a redis-py release fixes or
changes this, so the guard can go.
"""

from __future__ import annotations

from pathlib import PurePath

#: What redis-py 8.1 says when it dereferences the missing node.
MESSAGE = "'NoneType' object has no attribute"
#: Where it says it: the innermost frame's file, as a path suffix.
ORIGIN = ("redis", "asyncio", "cluster.py")


def innermost_file(exc: BaseException) -> str:
    """The file of the frame that raised `exc` ("" without a traceback)."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename


def ask_to_unknown_node(exc: BaseException) -> bool:
    """Whether `exc` is redis-py#4015: an ASK it could not follow, the command not run."""
    if not isinstance(exc, AttributeError) or MESSAGE not in str(exc):
        return False
    return PurePath(innermost_file(exc)).parts[-len(ORIGIN):] == ORIGIN
