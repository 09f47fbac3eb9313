-- Record the priority to restore before fencing a returning Redis node.
-- KEYS[1] the fence records (keys.FENCES): hash "ip:port" -> priority
-- ARGV[1] the node to fence ("ip:port")  ARGV[2] its configured priority
-- ARGV[3..] its anchors: replicas that hold every acked write and that
--           Sentinel ranks at least as high (server/fencing.py)
-- Returns 1 if the node is recorded (now or already), 0 if refused.
-- Refused unless an anchor has no fence record itself: two instances
-- polling a moment apart must not each fence the other's anchor and leave
-- no promotable replica. One script, so the check and the write are atomic.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 1
end
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
