-- PUBLISH many notifications in one call, in order.
-- KEYS none (channels are not keys)
-- ARGV[2i+1] channel  ARGV[2i+2] payload, for i from 0
-- Returns the number of notifications published.
-- One call instead of a pipeline of PUBLISHes: redis-py builds and parses
-- one command per batch instead of one per message.
for i = 1, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
