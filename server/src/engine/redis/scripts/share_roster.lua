-- Publishes one node's part of a room's roster under a lease.
-- KEYS: roster hash, live channel. ARGV: node id, JSON roster ('' to leave), lease ms, '1' to
-- announce the change to other nodes.
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local lease = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[1], (now + lease) .. '|' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
end
if ARGV[4] == '1' then
  redis.call('__PUBLISH__', KEYS[2], 'r' .. ARGV[1])
end
return 1
