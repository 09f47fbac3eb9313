-- Store messages in their recipients' inboxes, each exactly once per
-- (sender, recipient, msg_id) within the dedupe window. Several sends run
-- as ONE call (the group commit merges a batch's sends), laid out one send
-- after the other; a send takes 4 or 6 KEYS (its ARGV +1 says which) and 6
-- ARGV:
-- KEYS  +1 recipient account hash (also holds the inbox counters and the
--          newest seq ever stored, field l)
--       +2 recipient inbox stream
--       +3 recipient inbox ledger: a list of 'SIZE SENDER', one per entry
--          (what ack.lua takes off the counters without reading entries)
--       +4 dedupe hash that takes the record (the field-expiry hash, or
--          the current generation's hash)
--       +5.. dedupe hashes also looked in first, up to +NKEYS (the
--          neighbouring generations; after a layout change the other
--          layout's hashes; the legacy hash): server/data/dedupe.py
-- ARGV  +1 settings, one string: 'NKEYS LAYOUT EXPIRE LOOK MAX_N MAX_FROM
--          MAX_BYTES': NKEYS 4 or more; LAYOUT hsetex | hpexpire (field
--          expiry) | generations; EXPIRE field layouts: the record's
--          lifetime (ms), generations: how long (ms) the generation's hash
--          still lives; LOOK 1 to look in +5.. (0: NKEYS is 4); the inbox bounds: most
--          messages, most from one sender, most body bytes. One string
--          instead of seven values: it is the same for every send of a batch,
--          and parsed once.
--       +2 sender  +3 recipient  +4 msg_id  +5 body  +6 ts (ms)
-- Returns one reply per send, in order, each
-- {'ok', seq, prev_seq} | {'dup', ts, newest_seq} | {'no_such_user'}
-- | {'inbox_full'} | {'sender_full'} | {'bytes_full'} | {'error', message}
-- | {'layout', command} (every send of the call, nothing written: this node
-- lacks the command the layout writes with, e.g. after a failover to an
-- older version; the server asks again which layout to use):
-- a send that fails (a key of the wrong type) fails alone, with the other
-- sends of the call to the same recipient (they touch the same keys); the
-- others go on.
-- prev_seq is the seq stored before this one ('0-0' if none), even if acked
-- since: a pusher that already pushed prev_seq knows there is no gap
-- before this message. A retry's newest_seq is the newest seq stored so
-- far: its first send is at or before it (the record holds only the ts).
-- Sends to one recipient run in order, so a later one sees an earlier one's entry.
-- Counters (account fields n, b, p:<sender>) count the inbox's entries,
-- never dedupe records: ack.lua takes removed entries off (from the
-- ledger), the dedupe window does not touch them. Counters without field l
-- (absent: an inbox stored before quotas; or kept by a version without the
-- ledger) are counted from the inbox once, here, and the ledger rebuilt.
--
-- Cost (the primary runs this for every message): the sends of a call to
-- one recipient (a client's pipelined sends, and any others to it in the
-- batch) form a run that reads the account once (HMGET: existence, counters, newest seq)
-- and writes it and the ledger once (HSET, RPUSH). A run whose records are
-- all new and that fits the bounds writes every record with one HSETEX FNX
-- (written only if none exists: lookup and write in one) and then XADDs:
-- k messages cost k + 4 commands. Otherwise each send on its own: HSETEX FNX (HSETNX + an
-- expiry on Redis 7.0-7.4) and XADD; a retry HSETEX + HGET; a send to a
-- full inbox one HGET (a retry of a stored message still answers 'dup').
-- Key generations add an HGET per neighbouring generation (1-2), and the
-- hpexpire layout one HPTTL per call (the check below).

local HSET_CHUNK = 500

-- Count an inbox's messages, bytes and messages per sender into the
-- account hash, replacing whatever counters were there, and write its
-- ledger again. Returns n, bytes, per sender, and the newest entry's seq.
local function count_inbox(account, inbox, ledger)
  local n, bytes, from, newest, lines = 0, 0, {}, '0-0', {}
  redis.call('DEL', ledger)
  for _, entry in ipairs(redis.call('XRANGE', inbox, '-', '+')) do
    local f, sender, body = entry[2], '', ''
    for j = 1, #f, 2 do
      if f[j] == 'from' then sender = f[j + 1] elseif f[j] == 'body' then body = f[j + 1] end
    end
    n, bytes, newest = n + 1, bytes + #body, entry[1]
    from[sender] = (from[sender] or 0) + 1
    lines[#lines + 1] = #body .. ' ' .. sender
    if #lines >= HSET_CHUNK then
      redis.call('RPUSH', ledger, unpack(lines))
      lines = {}
    end
  end
  if #lines > 0 then redis.call('RPUSH', ledger, unpack(lines)) end
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
  return n, bytes, from, newest
end

local function settings(text)
  local nkeys, layout, expire, look, max_n, max_from, max_bytes =
    string.match(text, '^(%d+) (%a+) (%d+) ([01]) (%d+) (%d+) (%d+)$')
  if not nkeys then
    error('bad send settings ' .. text)
  end
  return {nkeys = tonumber(nkeys), layout = layout, expire = expire, look = look == '1',
          max_n = tonumber(max_n), max_from = tonumber(max_from),
          max_bytes = tonumber(max_bytes)}
end

-- Send k is KEYS[ko[k] + 1..] and ARGV[ao[k] + 1..]; cf[k] its parsed settings.
-- No table per send and no closure per run: this runs for every message.
local ko, ao, cf = {}, {}, {}
-- The sends' positions, run after run (see below); nil: in call order.
local order = nil
-- The run being stored: its keys, settings and counters.
local cfg, account, inbox, ledger, dedupe, n, bytes, last, pending, lines

local function field(k)
  return ARGV[ao[k] + 2] .. ':' .. ARGV[ao[k] + 4]
end

local function bound(k)
  if n >= cfg.max_n then return 'inbox_full' end
  if pending[ARGV[ao[k] + 2]] >= cfg.max_from then return 'sender_full' end
  if bytes + #ARGV[ao[k] + 5] > cfg.max_bytes then return 'bytes_full' end
  return nil
end

local function add(k)
  local a = ao[k]
  local sender, body = ARGV[a + 2], ARGV[a + 5]
  local seq = redis.pcall('XADD', inbox, '*', 'msg_id', ARGV[a + 4], 'from', sender,
                          'to', ARGV[a + 3], 'body', body, 'ts', ARGV[a + 6])
  if type(seq) == 'table' then
    return nil, seq.err
  end
  n, bytes, pending[sender] = n + 1, bytes + #body, pending[sender] + 1
  lines[#lines + 1] = #body .. ' ' .. sender
  local prev = last
  last = seq
  return {'ok', seq, prev}
end

-- A write's answer, raised if it is an error; an unknown command (this node
-- lacks what the layout writes with) sets `refused`, and every send of the
-- call then answers {'layout', command}.
local refused = nil
local function checked(answer, command)
  if type(answer) == 'table' and answer.err then
    if string.find(answer.err, 'nknown command') then refused = command end
    error(answer)
  end
  return answer
end

-- One send on its own: look up, write the record if absent, store.
local function one(k)
  local f, full = field(k), bound(k)
  local prior = nil
  if cfg.look then
    for x = ko[k] + 5, ko[k] + cfg.nkeys do
      prior = redis.call('HGET', KEYS[x], f)
      if prior then break end
    end
  end
  if not prior and full then prior = redis.call('HGET', dedupe, f) end
  if not prior then
    if full then
      return {full}
    end
    local ts, fresh = ARGV[ao[k] + 6], nil
    if cfg.layout == 'hsetex' then
      fresh = checked(redis.pcall('HSETEX', dedupe, 'FNX', 'PX', cfg.expire, 'FIELDS', 1, f, ts),
                      'HSETEX')
    else
      fresh = redis.call('HSETNX', dedupe, f, ts)
      if fresh == 1 and cfg.layout == 'hpexpire' then
        redis.call('HPEXPIRE', dedupe, cfg.expire, 'FIELDS', 1, f)
      elseif fresh == 1 then
        redis.call('PEXPIRE', dedupe, cfg.expire)
      end
    end
    if fresh == 0 then prior = redis.call('HGET', dedupe, f) end
  end
  if prior then
    -- 'ts' (or 'ts seq', as written before): the first send's ts.
    return {'dup', string.match(prior, '^%d+'), last}
  end
  local reply, err = add(k)
  if not reply then
    redis.call('HDEL', dedupe, f)  -- no message, no record: a retry may store it
    return {'error', err}
  end
  return reply
end

-- Whether the sends of run lo..hi can go together: every record new
-- (checked by the HSETEX FNX itself), no msg_id twice, every send within
-- the bounds.
local function fits_together(lo, hi)
  if cfg.layout ~= 'hsetex' or cfg.nkeys ~= 4 or lo == hi then
    return false
  end
  local nn, bb, pp, seen = n, bytes, {}, {}
  for x = lo, hi do
    local k = order and order[x] or x
    local a = ao[k]
    local sender, f = ARGV[a + 2], field(k)
    local p = pp[sender] or pending[sender]
    if seen[f] or nn >= cfg.max_n or p >= cfg.max_from or bb + #ARGV[a + 5] > cfg.max_bytes then
      return false
    end
    seen[f] = true
    nn, bb, pp[sender] = nn + 1, bb + #ARGV[a + 5], p + 1
  end
  return true
end

-- The run at places lo..hi of `order` (see below): sends to one
-- recipient with the same keys and settings string, in call order; each
-- reply goes to replies[the send's position in the call].
local function send_run(lo, hi, replies)
  local kb = ko[order and order[lo] or lo]
  cfg, account, inbox, ledger, dedupe = cf[order and order[lo] or lo], KEYS[kb + 1],
                                        KEYS[kb + 2], KEYS[kb + 3], KEYS[kb + 4]
  local fields, slot = {'gen', 'n', 'b', 'l'}, {}
  for x = lo, hi do
    local k = order and order[x] or x
    local sender = ARGV[ao[k] + 2]
    if not slot[sender] then
      fields[#fields + 1] = 'p:' .. sender
      slot[sender] = #fields
    end
  end
  local acc = redis.call('HMGET', account, unpack(fields))
  if not acc[1] then
    for x = lo, hi do replies[order and order[x] or x] = {'no_such_user'} end
    return
  end
  n, bytes, last, pending, lines = tonumber(acc[2]), tonumber(acc[3]), acc[4], {}, {}
  for sender, at in pairs(slot) do pending[sender] = tonumber(acc[at] or 0) end
  if not n or not bytes or not last then
    local counted, newest
    n, bytes, counted, newest = count_inbox(account, inbox, ledger)
    for sender in pairs(slot) do pending[sender] = counted[sender] or 0 end
    last = last or newest
  end
  local together = fits_together(lo, hi)
  if together then
    local args = {dedupe, 'FNX', 'PX', cfg.expire, 'FIELDS', hi - lo + 1}
    for x = lo, hi do
      local k = order and order[x] or x
      args[#args + 1], args[#args + 2] = field(k), ARGV[ao[k] + 6]
    end
    together = checked(redis.pcall('HSETEX', unpack(args)), 'HSETEX') == 1
  end
  if together then
    for x = lo, hi do
      local k = order and order[x] or x
      local reply, err = add(k)
      if not reply then
        local gone = {}
        for y = x, hi do
          local m = order and order[y] or y
          gone[#gone + 1] = field(m)
          replies[m] = {'error', err}
        end
        redis.call('HDEL', dedupe, unpack(gone))
        break
      end
      replies[k] = reply
    end
  else
    for x = lo, hi do
      local k = order and order[x] or x
      local ok, reply = pcall(one, k)
      if not ok then
        reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
      end
      replies[k] = reply
    end
  end
  if #lines > 0 then
    if redis.call('RPUSH', ledger, unpack(lines)) ~= n then
      -- Another writer (a version without the ledger) added or removed
      -- entries: count again at the next send.
      redis.call('HDEL', account, 'n', 'b')
      redis.call('HSET', account, 'l', last)
      return
    end
    local counts = {'n', n, 'b', bytes, 'l', last}
    for sender in pairs(slot) do
      counts[#counts + 1], counts[#counts + 2] = 'p:' .. sender, pending[sender]
    end
    redis.call('HSET', account, unpack(counts))
  end
end

local replies = {}
local ki, ai, text, parsed = 0, 0, nil, nil
while ai < #ARGV do
  if ARGV[ai + 1] ~= text then
    text = ARGV[ai + 1]
    parsed = settings(text)
  end
  local k = #ko + 1
  ko[k], ao[k], cf[k] = ki, ai, parsed
  ki, ai = ki + parsed.nkeys, ai + 6
end
-- A node without the command a layout writes with (a failover to an older
-- version) refuses the whole call before its first write: a Lua error after
-- a write leaves that write in place (a record without its message, which a
-- retry would take for the stored message). HSETEX is the first write of a
-- send (only a recount of the counters may come before it), so it is its
-- own check; HSETNX + HPEXPIRE is checked first with one read per call.
for k = 1, #ko do
  if cf[k].layout == 'hpexpire' then
    pcall(checked, redis.pcall('HPTTL', KEYS[ko[k] + 4], 'FIELDS', 1, ''), 'HPEXPIRE')
    break
  end
end
-- Every send of the call to one recipient joins one run, even when other
-- sends came between them (sends of several groups, or of clients that did
-- not pipeline): fewer account, dedupe and ledger commands per message.
-- Sends to one inbox keep their order; sends to different inboxes are
-- independent, and all of them become durable together. Runs are ranges
-- lo..hi of `order` (the sends' positions, run after run), or of the
-- positions themselves (order nil) when every recipient's sends are
-- already next to each other, the common case, which then allocates
-- nothing per run.
local function same(k, j)
  local kk, kj = ko[k], ko[j]
  return KEYS[kk + 1] == KEYS[kj + 1] and KEYS[kk + 4] == KEYS[kj + 4]
         and ARGV[ao[k] + 1] == ARGV[ao[j] + 1]
end

local firsts, lasts, started, spread = {}, {}, {}, false
local x = 1
while x <= #ko do
  local y = x
  while y < #ko and same(y + 1, x) do y = y + 1 end
  local account_key = KEYS[ko[x] + 1]
  if started[account_key] then
    spread = true
    break
  end
  started[account_key] = true
  firsts[#firsts + 1], lasts[#lasts + 1] = x, y
  x = y + 1
end
if spread then
  -- Gather: each send joins the first run of its recipient with its keys.
  local runs, by_account = {}, {}
  for k = 1, #ko do
    local mine = by_account[KEYS[ko[k] + 1]]
    if not mine then
      mine = {}
      by_account[KEYS[ko[k] + 1]] = mine
    end
    local r = nil
    for c = 1, #mine do
      if same(mine[c][1], k) then
        r = mine[c]
        break
      end
    end
    if not r then
      r = {}
      mine[#mine + 1] = r
      runs[#runs + 1] = r
    end
    r[#r + 1] = k
  end
  order, firsts, lasts = {}, {}, {}
  for c = 1, #runs do
    firsts[c] = #order + 1
    for y = 1, #runs[c] do order[#order + 1] = runs[c][y] end
    lasts[c] = #order
  end
end
for c = 1, #firsts do
  if refused then break end
  local ok, err = pcall(send_run, firsts[c], lasts[c], replies)
  if not ok then
    err = type(err) == 'table' and err.err or tostring(err)
    for y = firsts[c], lasts[c] do
      local k = order and order[y] or y
      if not replies[k] then replies[k] = {'error', err} end
    end
  end
end
if refused then
  for k = 1, #ko do replies[k] = {'layout', refused} end
end
return replies
