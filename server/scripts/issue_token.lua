-- Record a session token for an account that still is the one the password
-- was checked against, pruning the account's expired tokens.
-- KEYS[1] account hash   KEYS[2] tokens hash (sha256 -> expiry ms)
-- ARGV[1] token sha256   ARGV[2] expiry (ms)   ARGV[3] now (ms)   ARGV[4] generation id
-- Returns 1 when recorded, 0 when the account is gone or was re-created.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[4] then
  return 0
end
local now = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then
    redis.call('HDEL', KEYS[2], all[i])
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
-- Every token has the same lifetime, so the newest expires last.
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
return 1
