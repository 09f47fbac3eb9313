-- Store messages in their recipients' inboxes, each exactly once per
-- (sender, recipient, msg_id) within the dedupe window. Several sends run
-- as ONE call (the group commit merges a batch's sends): call i (from 0)
-- owns KEYS[5i+1..5i+5] and ARGV[11i+1..11i+11], laid out as for one send:
-- KEYS  +1 recipient account hash (also holds the inbox counters and the
--          newest seq ever stored, field l)
--       +2 recipient inbox stream
--       +3 dedupe hash that takes the record (the field-expiry hash, or
--          the current generation's hash)
--       +4 dedupe hash also looked in (the previous generation; = +3 with
--          field expiry)
--       +5 legacy dedupe hash (read only while ARGV +8 is '1')
-- ARGV  +1 sender  +2 recipient  +3 msg_id  +4 body  +5 ts (ms)
--       +6 layout: 'hsetex' | 'hpexpire' (field expiry) | 'generations'
--       +7 field layouts: the record's lifetime (ms); generations: how
--          long (ms) the generation's hash still lives
--       +8 '1' to look in the legacy hash too
--       +9 most messages in the inbox  +10 most from one sender
--       +11 most body bytes in the inbox
-- Returns one reply per call, in order, each
-- {'ok', seq, prev_seq} | {'dup', ts, newest_seq} | {'no_such_user'}
-- | {'inbox_full'} | {'sender_full'} | {'bytes_full'} | {'error', message}:
-- a call that fails (a key of the wrong type) fails alone, as it would as a
-- script of its own; the others go on.
-- prev_seq is the seq stored before this one ('0-0' if none), even if acked
-- since: a pusher that already pushed prev_seq knows there is no gap
-- before this message. A retry's newest_seq is the newest seq stored so
-- far: its first send is at or before it (the record holds only the ts).
-- Calls run in order, so a later call sees an earlier one's entry.
-- Counters (account fields n, b, p:<sender>) count the inbox's entries,
-- never dedupe records: ack.lua takes removed entries off, the dedupe
-- window does not touch them. Absent counters (an inbox stored before
-- quotas) are counted from the inbox once, here.
--
-- Cost (the primary runs this for every message): a new message is 4
-- commands, HMGET (account, counters, newest seq), HSETEX FNX (the record,
-- written only if absent: the dedupe lookup and the write in one), XADD,
-- HSET (counters + newest seq). A retry is HMGET, HSETEX, HGET; a send to
-- a full inbox HMGET and HGET (a retry of a stored message still answers
-- 'dup'). Older layouts (Redis 7.0-7.4) take HSETNX + an expiry instead.

local HSET_CHUNK = 500

-- Count an inbox's messages, bytes and messages per sender into the
-- account hash, replacing whatever counters were there.
local function count_inbox(account, inbox)
  local n, bytes, from = 0, 0, {}
  for _, entry in ipairs(redis.call('XRANGE', inbox, '-', '+')) do
    local f, sender, body = entry[2], '', ''
    for j = 1, #f, 2 do
      if f[j] == 'from' then sender = f[j + 1] elseif f[j] == 'body' then body = f[j + 1] end
    end
    n, bytes = n + 1, bytes + #body
    from[sender] = (from[sender] or 0) + 1
  end
  local stale = {}
  for _, name in ipairs(redis.call('HKEYS', account)) do
    if string.sub(name, 1, 2) == 'p:' then stale[#stale + 1] = name end
  end
  for j = 1, #stale, HSET_CHUNK do
    redis.call('HDEL', account, unpack(stale, j, math.min(j + HSET_CHUNK - 1, #stale)))
  end
  local args = {'n', n, 'b', bytes}
  for sender, c in pairs(from) do
    args[#args + 1], args[#args + 2] = 'p:' .. sender, c
    if #args >= 2 * HSET_CHUNK then
      redis.call('HSET', account, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('HSET', account, unpack(args)) end
  return n, bytes, from
end

local function send(account, inbox, dedupe, dedupe_prev, legacy, sender, recipient, msg_id,
                    body, ts, layout, expire, legacy_on, max_n, max_from, max_bytes)
  local field = sender .. ':' .. msg_id
  local from_field = 'p:' .. sender
  local acc = redis.call('HMGET', account, 'gen', 'n', 'b', from_field, 'l')
  if not acc[1] then
    return {'no_such_user'}
  end
  local n, bytes, pending, last = tonumber(acc[2]), tonumber(acc[3]), tonumber(acc[4] or 0), acc[5]
  if not n or not bytes then
    local counted
    n, bytes, counted = count_inbox(account, inbox)
    pending = counted[sender] or 0
  end
  if not last then  -- stored before field l: the inbox's newest entry, once
    local newest = redis.call('XREVRANGE', inbox, '+', '-', 'COUNT', 1)
    last = #newest > 0 and newest[1][1] or '0-0'
  end
  local full = nil
  if n >= tonumber(max_n) then
    full = 'inbox_full'
  elseif pending >= tonumber(max_from) then
    full = 'sender_full'
  elseif bytes + #body > tonumber(max_bytes) then
    full = 'bytes_full'
  end
  -- Records the write below cannot see (another generation, the legacy
  -- hash, or any record when nothing is written) are looked up first.
  local prior = nil
  if dedupe_prev ~= dedupe then prior = redis.call('HGET', dedupe_prev, field) end
  if not prior and legacy_on == '1' then prior = redis.call('HGET', legacy, field) end
  if not prior and full then prior = redis.call('HGET', dedupe, field) end
  if not prior then
    if full then
      return {full}
    end
    local fresh
    if layout == 'hsetex' then
      fresh = redis.call('HSETEX', dedupe, 'FNX', 'PX', expire, 'FIELDS', 1, field, ts)
    else
      fresh = redis.call('HSETNX', dedupe, field, ts)
      if fresh == 1 and layout == 'hpexpire' then
        redis.call('HPEXPIRE', dedupe, expire, 'FIELDS', 1, field)
      elseif fresh == 1 then
        redis.call('PEXPIRE', dedupe, expire)
      end
    end
    if fresh == 0 then prior = redis.call('HGET', dedupe, field) end
  end
  if prior then
    -- 'ts' (or 'ts seq', as written before): the first send's ts.
    return {'dup', string.match(prior, '^%d+'), last}
  end
  local seq = redis.pcall('XADD', inbox, '*', 'msg_id', msg_id, 'from', sender,
                          'to', recipient, 'body', body, 'ts', ts)
  if type(seq) == 'table' then
    redis.call('HDEL', dedupe, field)  -- no message, no record: a retry may store it
    return {'error', seq.err}
  end
  redis.call('HSET', account, 'n', n + 1, 'b', bytes + #body, from_field, pending + 1, 'l', seq)
  return {'ok', seq, last}
end

local replies = {}
for i = 0, #KEYS / 5 - 1 do
  local k, a = 5 * i, 11 * i
  local ok, reply = pcall(send, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5],
                          ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
                          ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10],
                          ARGV[a + 11])
  if not ok then
    reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i + 1] = reply
end
return replies
