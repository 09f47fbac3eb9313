-- Take back the attempt a successful login counted in advance.
-- KEYS[1] attempt counter (see login_failed.lua)
-- Returns the count left. An expired counter stays gone: a DECR would
-- recreate it without a TTL and lock the name out for good.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('DECR', KEYS[1])
