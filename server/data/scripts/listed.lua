-- Settle a name's directory step: clear the account's pending-listing mark
-- once its name is in the directory, and drop the name from its slot's
-- pending set unless a listing is still pending.
-- KEYS[1] account hash   KEYS[2] pending set of the account's slot
-- ARGV[1] generation id the listing was made for ('' after an unlisting):
--         a re-created account keeps its own mark
-- ARGV[2] name
-- Returns 1 when the mark was cleared, 0 otherwise.
local cleared = 0
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  cleared = redis.call('HDEL', KEYS[1], 'dir')
end
if redis.call('HEXISTS', KEYS[1], 'dir') == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return cleared
