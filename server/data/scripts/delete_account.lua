-- Remove an account with its inbox (and the inbox counters in the account
-- hash), dedupe records, tokens and revoked-token records, and unlist it.
-- KEYS[1] account hash   KEYS[2] inbox   KEYS[3] dedupe hash (field expiry)
-- KEYS[4], KEYS[5] the dedupe hashes of the current and previous generation
-- KEYS[6] legacy seen hash   KEYS[7] legacy seen-expiry sorted set
-- KEYS[8] tokens hash    KEYS[9] sorted set of all names   KEYS[10] revoked-tokens hash
-- KEYS[11] inbox ledger
-- KEYS[12..] the other dedupe generations a send may read (clocks apart)
-- ARGV[1] name   ARGV[2] generation id the password was checked against
-- Returns 1 when deleted, 0 when the account is gone or was re-created.
-- Older dedupe generations are never read again and expire on their own.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
           KEYS[10], KEYS[11])
for i = 12, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('ZREM', KEYS[9], ARGV[1])
return 1
