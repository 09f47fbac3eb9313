"""Deployment files; deploy.redis_sentinel is the code in deploy/redis-sentinel/."""
