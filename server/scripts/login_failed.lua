-- Count one failed login in a fixed window that starts at the first failure.
-- KEYS[1] failure counter (name + address)
-- ARGV[1] window (ms)
-- Returns the number of failures in the current window.
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
