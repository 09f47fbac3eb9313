-- Remove acknowledged messages from inboxes and take them off the inbox
-- counters. Several acks run as ONE call (acks arriving together are
-- merged): call i (from 0) owns KEYS[3i+1..3i+3] and ARGV[i+1].
-- KEYS  +1 inbox stream   +2 account hash (its counters n, b, p:<sender>, l)
--       +3 inbox ledger (list of 'SIZE SENDER', one per entry, in order)
-- ARGV[i+1] the smallest seq to keep ('' : remove every entry)
-- Returns one reply per call, in order: how many entries went, or
-- {'error', message} for a call that failed (a key of the wrong type).
-- The removed entries are never read back: the ledger's first lines say
-- what they held (XTRIM, LPOP, HMGET, XLEN, HSET, and HDEL when a sender's
-- count reaches 0). Counters kept without the ledger (no field l: an older
-- version) or that would not stay exact are dropped, and the next send
-- counts the inbox again (send.lua).
local function drop_counters(account, ledger)
  local stale = {'n', 'b'}
  for _, name in ipairs(redis.call('HKEYS', account)) do
    if string.sub(name, 1, 2) == 'p:' then stale[#stale + 1] = name end
  end
  for j = 1, #stale, 500 do
    redis.call('HDEL', account, unpack(stale, j, math.min(j + 499, #stale)))
  end
  redis.call('DEL', ledger)
end

local function uncount(inbox, account, ledger, removed)
  local gone = redis.call('LPOP', ledger, removed)
  if not gone or #gone ~= removed then
    -- Counters kept without the ledger (an older version) or a ledger
    -- shorter than the inbox: the next send counts what is left.
    local now = redis.call('HMGET', account, 'n', 'b')
    if now[1] or now[2] then drop_counters(account, ledger) end
    return
  end
  local bytes, from, senders = 0, {}, {}
  for _, line in ipairs(gone) do
    local size, sender = string.match(line, '^(%d+) (.*)$')
    bytes = bytes + tonumber(size)
    if not from[sender] then
      senders[#senders + 1] = sender
      from[sender] = 0
    end
    from[sender] = from[sender] + 1
  end
  local fields = {'n', 'b', 'l'}
  for _, sender in ipairs(senders) do fields[#fields + 1] = 'p:' .. sender end
  local now = redis.call('HMGET', account, unpack(fields))
  if not now[1] or not now[2] or not now[3] then
    drop_counters(account, ledger)  -- a ledger without counters: start again
    return
  end
  local set, drop = {'n', now[1] - removed, 'b', now[2] - bytes}, {}
  -- An entry another writer added (a server version without the ledger)
  -- shows as an inbox longer than the counters say.
  local exact = set[2] == redis.call('XLEN', inbox) and set[4] >= 0
  for i, sender in ipairs(senders) do
    local left = tonumber(now[i + 3] or 0) - from[sender]
    if left > 0 then
      set[#set + 1], set[#set + 2] = fields[i + 3], left
    else
      drop[#drop + 1] = fields[i + 3]
      exact = exact and left == 0
    end
  end
  if not exact then
    drop_counters(account, ledger)
    return
  end
  redis.call('HSET', account, unpack(set))
  if #drop > 0 then redis.call('HDEL', account, unpack(drop)) end
end

local function trim(inbox, account, ledger, keep)
  local removed
  if keep == '' then
    removed = redis.call('XTRIM', inbox, 'MAXLEN', 0)
  else
    removed = redis.call('XTRIM', inbox, 'MINID', keep)
  end
  if removed > 0 then
    uncount(inbox, account, ledger, removed)
  end
  return removed
end

local replies = {}
for i = 0, #KEYS / 3 - 1 do
  local ok, reply = pcall(trim, KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], ARGV[i + 1])
  if not ok then
    reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i + 1] = reply
end
return replies
