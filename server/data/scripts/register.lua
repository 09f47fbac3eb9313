-- Create an account and list its name, or do nothing if the name is taken.
-- KEYS[1] account hash of the name
-- KEYS[2] sorted set of all names; on a Redis Cluster (ARGV[5] = 'pending'),
--         where the directory lives in a slot of its own, the pending set of
--         the account's slot instead: the account is marked `dir`=1 (listing
--         pending) and its name added there, and the caller lists it in a
--         second step (directory.lua) and clears both (listed.lua)
-- ARGV[1] name  ARGV[2] argon2 hash  ARGV[3] created (ms)  ARGV[4] generation id
-- ARGV[5] 'pending' on a Redis Cluster
-- Returns 1 when created, 0 when the name exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'created', ARGV[3], 'gen', ARGV[4])
if ARGV[5] == 'pending' then
  redis.call('HSET', KEYS[1], 'dir', '1')
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
return 1
