-- Remove an account with its inbox, dedupe records and tokens, and unlist it.
-- KEYS[1] account hash   KEYS[2] inbox   KEYS[3] seen hash   KEYS[4] seen-expiry
-- KEYS[5] tokens hash    KEYS[6] sorted set of all names   KEYS[7] revoked-tokens hash
-- ARGV[1] name   ARGV[2] generation id the password was checked against
-- Returns 1 when deleted, 0 when the account is gone or was re-created.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
