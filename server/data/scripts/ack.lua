-- Remove acknowledged messages from inboxes and take them off the inbox
-- counters. Several acks run as ONE call (acks arriving together are
-- merged): call i (from 0) owns KEYS[2i+1..2i+2] and ARGV[i+1].
-- KEYS  +1 inbox stream   +2 account hash (its counters n, b, p:<sender>)
-- ARGV[i+1] the smallest seq to keep ('' : remove every entry)
-- Returns one reply per call, in order: how many entries went, or
-- {'error', message} for a call that failed (a key of the wrong type).
-- Counters that would go below zero were not exact (entries stored by a
-- server version without counters): they are dropped, and the next send
-- counts the inbox again (send.lua).
local function uncount(account, gone)
  local n, bytes, from, senders = #gone, 0, {}, {}
  for _, entry in ipairs(gone) do
    local f, sender, body = entry[2], '', ''
    for j = 1, #f, 2 do
      if f[j] == 'from' then sender = f[j + 1] elseif f[j] == 'body' then body = f[j + 1] end
    end
    bytes = bytes + #body
    if not from[sender] then
      senders[#senders + 1] = sender
      from[sender] = 0
    end
    from[sender] = from[sender] + 1
  end
  local fields = {'n', 'b'}
  for _, sender in ipairs(senders) do fields[#fields + 1] = 'p:' .. sender end
  local now = redis.call('HMGET', account, unpack(fields))
  if not now[1] or not now[2] then
    return  -- not counted yet: the next send counts what is left
  end
  local set, drop, exact = {'n', now[1] - n, 'b', now[2] - bytes}, {}, true
  exact = set[2] >= 0 and set[4] >= 0
  for i, sender in ipairs(senders) do
    local left = tonumber(now[i + 2] or 0) - from[sender]
    if left > 0 then
      set[#set + 1], set[#set + 2] = fields[i + 2], left
    else
      drop[#drop + 1] = fields[i + 2]
      exact = exact and left == 0
    end
  end
  if not exact then
    local stale = {'n', 'b'}
    for _, name in ipairs(redis.call('HKEYS', account)) do
      if string.sub(name, 1, 2) == 'p:' then stale[#stale + 1] = name end
    end
    for j = 1, #stale, 500 do
      redis.call('HDEL', account, unpack(stale, j, math.min(j + 499, #stale)))
    end
    return
  end
  redis.call('HSET', account, unpack(set))
  if #drop > 0 then redis.call('HDEL', account, unpack(drop)) end
end

local function trim(inbox, account, keep)
  local gone = redis.call('XRANGE', inbox, '-', keep == '' and '+' or '(' .. keep)
  if #gone == 0 then
    return 0
  end
  local removed
  if keep == '' then
    removed = redis.call('XTRIM', inbox, 'MAXLEN', 0)
  else
    removed = redis.call('XTRIM', inbox, 'MINID', keep)
  end
  uncount(account, gone)
  return removed
end

local replies = {}
for i = 0, #KEYS / 2 - 1 do
  local ok, reply = pcall(trim, KEYS[2 * i + 1], KEYS[2 * i + 2], ARGV[i + 1])
  if not ok then
    reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i + 1] = reply
end
return replies
