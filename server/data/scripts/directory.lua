-- List or unlist a name in the directory (Redis Cluster: the directory's own slot).
-- KEYS[1] sorted set of all names
-- ARGV[1] 'add' or 'remove'   ARGV[2] name
-- Returns 1 when the directory changed, 0 when it already said so.
if ARGV[1] == 'add' then
  return redis.call('ZADD', KEYS[1], 0, ARGV[2])
end
return redis.call('ZREM', KEYS[1], ARGV[2])
