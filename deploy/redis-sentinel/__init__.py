"""Redis + Sentinel for the chat service: the local HA set, multi-host configs, the rejoin step.

The files live in deploy/redis-sentinel/ (the product's fixed path); a
hyphen cannot name a Python package, so deploy/redis_sentinel is a
git-tracked symlink to it and the code is imported and run as
`deploy.redis_sentinel` (`python -m deploy.redis_sentinel.redisset ...`).
See README.md here.
"""
