-- Remove acknowledged messages from inboxes. Several acks run as ONE call
-- (acks arriving together are merged): call i owns KEYS[i] and ARGV[i].
-- KEYS[i] inbox stream
-- ARGV[i] the smallest seq to keep ('' : remove every entry)
-- Returns one reply per call, in order: how many entries went, or
-- {'error', message} for a call that failed (a key of the wrong type).
local function trim(inbox, keep)
  if keep == '' then
    return redis.call('XTRIM', inbox, 'MAXLEN', 0)
  end
  return redis.call('XTRIM', inbox, 'MINID', keep)
end

local replies = {}
for i = 1, #KEYS do
  local ok, reply = pcall(trim, KEYS[i], ARGV[i])
  if not ok then
    reply = {'error', type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i] = reply
end
return replies
