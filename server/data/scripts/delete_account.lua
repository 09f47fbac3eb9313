-- Remove an account with its inbox (and the inbox counters in the account
-- hash), dedupe records, tokens and revoked-token records, and unlist it.
-- KEYS[1] account hash   KEYS[2] inbox   KEYS[3] dedupe hash (field expiry)
-- KEYS[4], KEYS[5] the dedupe hashes of the current and previous generation
-- KEYS[6] legacy seen hash   KEYS[7] legacy seen-expiry sorted set
-- KEYS[8] tokens hash    KEYS[9] revoked-tokens hash   KEYS[10] inbox ledger
-- KEYS[11..] the other dedupe generations a send may read (clocks apart), then
--          last: when ARGV[3] is '1' the sorted set of all names; when it is
--          'pending' (a Redis Cluster, where the caller unlists the name in a
--          second step, directory.lua) the pending set of the account's slot,
--          which records the unlisting until it is made
-- ARGV[1] name   ARGV[2] generation id the password was checked against
-- ARGV[3] '1' or 'pending': what the last key is
-- Returns 1 when deleted, 0 when the account is gone or was re-created.
-- Older dedupe generations are never read again and expire on their own.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
           KEYS[9], KEYS[10])
local last = #KEYS
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[last], ARGV[1])
  last = last - 1
elseif ARGV[3] == 'pending' then
  redis.call('SADD', KEYS[last], ARGV[1])
  last = last - 1
end
for i = 11, last do redis.call('DEL', KEYS[i]) end
return 1
