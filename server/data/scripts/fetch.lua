-- Read the oldest messages of an inbox that fit a reply of ARGV[2] bytes.
-- KEYS[1] inbox stream
-- ARGV[1] most messages to return (the fetch limit)
-- ARGV[2] room: bytes the message objects may take in the JSON reply
-- ARGV[3] bytes of one message object besides its field values
-- Returns {XLEN, {entry, ...}} with entries as XRANGE gives them, oldest
-- first; at least one when the inbox has any. Sizes are estimated from
-- above as JSON escapes them (a control character 6 bytes, a quote or a
-- backslash 2, everything else as stored), so pages of 100 are read only
-- while they may still fit: a reply of big bodies costs no 1000-entry read.
local limit, room, overhead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, used, start = {}, 0, '-'
while #out < limit do
  local want = math.min(limit - #out, 100)
  local page = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', want)
  for _, entry in ipairs(page) do
    local size = overhead + string.len(entry[1])
    local fields = entry[2]
    for i = 2, #fields, 2 do
      local value = fields[i]
      local _, controls = string.gsub(value, '[%z\1-\31]', '')
      local _, quotes = string.gsub(value, '["\\]', '')
      size = size + string.len(value) + 5 * controls + quotes
    end
    if used + size > room and #out > 0 then
      return {redis.call('XLEN', KEYS[1]), out}
    end
    used = used + size
    out[#out + 1] = entry
  end
  if #page < want then
    break
  end
  start = '(' .. page[#page][1]
end
return {redis.call('XLEN', KEYS[1]), out}
