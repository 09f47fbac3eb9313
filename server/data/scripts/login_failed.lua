-- Count one failed login in a fixed window that starts at the first failure.
-- KEYS[1] counter (name + address, or address alone)
-- ARGV[1] window (ms)
-- Returns the count in the current window. A counter found without a TTL
-- gets one, so no counter can lock anyone out for good.
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
