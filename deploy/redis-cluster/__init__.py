"""Redis Cluster for the chat service: the local cluster, status, add a shard, multi-host configs.

The files live in deploy/redis-cluster/ (the product's fixed path); a hyphen
cannot name a Python package, so deploy/redis_cluster is a git-tracked
symlink to it and the code is imported and run as `deploy.redis_cluster`
(`python -m deploy.redis_cluster.clusterctl ...`). The process helpers
(start/stop/kill one node, the binary, free ports) are the Sentinel set's,
imported from deploy.redis_sentinel. See README.md here.
"""
