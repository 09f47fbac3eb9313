-- Clear an account's pending-listing mark once its name is in the directory.
-- KEYS[1] account hash
-- ARGV[1] generation id the listing was made for: a re-created account keeps its own mark
-- Returns 1 when the mark was cleared, 0 otherwise.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return 0
end
return redis.call('HDEL', KEYS[1], 'dir')
