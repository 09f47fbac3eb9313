-- Store messages in their recipients' inboxes, each exactly once per
-- (sender, recipient, msg_id). Several sends run as ONE call (the group
-- commit merges a batch's sends): call i (from 0) owns KEYS[4i+1..4i+4]
-- and ARGV[7i+1..7i+7], laid out as for a single send:
-- KEYS  +1 recipient account hash   +2 recipient inbox stream
--       +3 recipient seen hash      +4 recipient seen-expiry sorted set
-- ARGV  +1 sender  +2 recipient  +3 msg_id  +4 body  +5 ts (ms)
--       +6 dedupe lifetime (ms)     +7 inbox capacity
-- Returns one reply per call, in order, each
-- {'ok', seq, prev_seq} | {'dup', 'ts seq'} | {'no_such_user'} | {'inbox_full'}
-- | {'error', message}: a call that fails (a key of the wrong type) fails
-- alone, as it would as a script of its own; the others go on.
-- prev_seq is the entry before the new one ('0-0' if none): a pusher that
-- already pushed prev_seq knows there is no gap before this message.
-- Calls run in order, so a later call sees an earlier one's entry.
local function send(account, inbox, seen, expiry, sender, recipient, msg_id, body, ts,
                    lifetime, capacity)
  local field = sender .. ':' .. msg_id
  local prior = redis.call('HGET', seen, field)
  if prior then
    return {'dup', prior}
  end
  if redis.call('EXISTS', account) == 0 then
    return {'no_such_user'}
  end
  if redis.call('XLEN', inbox) >= tonumber(capacity) then
    return {'inbox_full'}
  end
  local last = redis.call('XREVRANGE', inbox, '+', '-', 'COUNT', 1)
  local prev = '0-0'
  if #last > 0 then
    prev = last[1][1]
  end
  local seq = redis.call('XADD', inbox, '*', 'msg_id', msg_id, 'from', sender,
                         'to', recipient, 'body', body, 'ts', ts)
  local now = tonumber(ts)
  redis.call('HSET', seen, field, ts .. ' ' .. seq)
  redis.call('ZADD', expiry, now + tonumber(lifetime), field)
  -- Prune a few expired dedupe records on every send: bounded work, no sweeper.
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, 10)
  if #expired > 0 then
    redis.call('HDEL', seen, unpack(expired))
    redis.call('ZREM', expiry, unpack(expired))
  end
  return {'ok', seq, prev}
end

local replies = {}
for i = 0, #KEYS / 4 - 1 do
  local k, a = 4 * i, 7 * i
  local ok, reply = pcall(send, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4],
                          ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
                          ARGV[a + 6], ARGV[a + 7])
  if not ok then
    reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i + 1] = reply
end
return replies
