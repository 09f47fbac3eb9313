-- Store one message in the recipient's inbox, exactly once per (sender, msg_id).
-- KEYS[1] recipient account hash   KEYS[2] recipient inbox stream
-- KEYS[3] recipient seen hash      KEYS[4] recipient seen-expiry sorted set
-- ARGV[1] sender  ARGV[2] recipient  ARGV[3] msg_id  ARGV[4] body  ARGV[5] ts (ms)
-- ARGV[6] dedupe lifetime (ms)     ARGV[7] inbox capacity
-- Returns {'ok', seq, prev_seq} | {'dup', 'ts seq'} | {'no_such_user'} | {'inbox_full'}.
-- prev_seq is the entry before the new one ('0-0' if none): a pusher that
-- already pushed prev_seq knows there is no gap before this message.
local field = ARGV[1] .. ':' .. ARGV[3]
local prior = redis.call('HGET', KEYS[3], field)
if prior then
  return {'dup', prior}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'no_such_user'}
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[7]) then
  return {'inbox_full'}
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local prev = '0-0'
if #last > 0 then
  prev = last[1][1]
end
local seq = redis.call('XADD', KEYS[2], '*', 'msg_id', ARGV[3], 'from', ARGV[1],
                       'to', ARGV[2], 'body', ARGV[4], 'ts', ARGV[5])
local now = tonumber(ARGV[5])
redis.call('HSET', KEYS[3], field, ARGV[5] .. ' ' .. seq)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[6]), field)
-- Prune a few expired dedupe records on every send: bounded work, no sweeper.
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 10)
if #expired > 0 then
  redis.call('HDEL', KEYS[3], unpack(expired))
  redis.call('ZREM', KEYS[4], unpack(expired))
end
return {'ok', seq, prev}
