-- Every write to an account's sessions: issue a token, revoke tokens (with the
-- reason kept for the token's remaining life), change the password.
-- KEYS[1] account hash   KEYS[2] tokens hash (sha256 -> expiry ms)
-- KEYS[3] revoked hash (sha256 -> "reason expiry_ms")
-- ARGV[1] generation id the caller checked: nothing happens unless it is still the account's
-- ARGV[2] now (ms)
-- ARGV[3] sha256 of a new token to record ('' : none)   ARGV[4] its expiry (ms)
-- ARGV[5] most live tokens: the oldest beyond it are revoked as 'replaced'
-- ARGV[6] what else to revoke: '' nothing, 'one' the token ARGV[8], 'all' every token
--         but the new one   ARGV[7] the reason recorded for those
-- ARGV[9] a new password hash ('' : unchanged)
-- ARGV[10] most revocation records kept (the soonest to expire go first)
-- Returns {1, reason1, sha1, reason2, sha2, ...} for the tokens revoked, or {0} when
-- the account is gone or was re-created.
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return {0}
end
local tokens, revoked = KEYS[2], KEYS[3]
local now = tonumber(ARGV[2])
local out = {1}

local function remember(hash, reason, expiry)
  redis.call('HSET', revoked, hash, reason .. ' ' .. expiry)
  local left = redis.call('PTTL', revoked)
  if left < 0 or now + left < tonumber(expiry) then
    redis.call('PEXPIREAT', revoked, expiry)
  end
end

local function revoke(hash, reason)
  local expiry = redis.call('HGET', tokens, hash)
  if expiry then
    redis.call('HDEL', tokens, hash)
    if tonumber(expiry) > now then
      remember(hash, reason, expiry)
      out[#out + 1] = reason
      out[#out + 1] = hash
    end
  end
end

-- Live tokens, pruning the expired ones (they end as 'expired' through the sweep).
local live = {}
local all = redis.call('HGETALL', tokens)
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then
    redis.call('HDEL', tokens, all[i])
  else
    live[#live + 1] = {all[i], tonumber(all[i + 1])}
  end
end

if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'pw', ARGV[9])
end
if ARGV[6] == 'one' then
  revoke(ARGV[8], ARGV[7])
elseif ARGV[6] == 'all' then
  for _, token in ipairs(live) do
    revoke(token[1], ARGV[7])
  end
end

if ARGV[3] ~= '' then
  redis.call('HSET', tokens, ARGV[3], ARGV[4])
  -- Every token has the same lifetime, so the newest expires last.
  redis.call('PEXPIREAT', tokens, ARGV[4])
  local count = redis.call('HLEN', tokens)
  local cap = tonumber(ARGV[5])
  if count > cap then
    -- The oldest token is the one expiring first (same lifetime for all).
    table.sort(live, function(a, b) return a[2] < b[2] end)
    for _, token in ipairs(live) do
      if count <= cap then
        break
      end
      if token[1] ~= ARGV[3] and redis.call('HEXISTS', tokens, token[1]) == 1 then
        revoke(token[1], 'replaced')
        count = count - 1
      end
    end
  end
end

-- Revocation records: drop the expired; keep at most ARGV[10], soonest to expire first out.
local records = redis.call('HGETALL', revoked)
local kept = {}
for i = 1, #records, 2 do
  local expiry = tonumber(string.match(records[i + 1], ' (%d+)$') or '0')
  if expiry <= now then
    redis.call('HDEL', revoked, records[i])
  else
    kept[#kept + 1] = {records[i], expiry}
  end
end
local most = tonumber(ARGV[10])
if #kept > most then
  table.sort(kept, function(a, b) return a[2] < b[2] end)
  for i = 1, #kept - most do
    redis.call('HDEL', revoked, kept[i][1])
  end
end
return out
