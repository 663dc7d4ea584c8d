-- Sets this node's count of one user's open connections, under a lease, unless the cap refuses
-- a rise: the other nodes' live counts plus the new one may not pass it. Lapsed leases (nodes
-- that died without saying) are dropped on the way.
-- KEYS: the user's hash. ARGV: node id, this node's new count, cap (0: none), lease ms.
-- Returns 1 when set, 0 when refused (nothing changes then).
local node = ARGV[1]
local count = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local mine, others = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local value = all[i + 1]
  local sep = string.find(value, '|', 1, true)
  local expires = tonumber(string.sub(value, 1, sep - 1))
  local n = tonumber(string.sub(value, sep + 1))
  if expires < now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] == node then
    mine = n
  else
    others = others + n
  end
end
if cap > 0 and count > mine and others + count > cap then
  return 0
end
if count == 0 then
  redis.call('HDEL', KEYS[1], node)
else
  redis.call('HSET', KEYS[1], node, (now + lease) .. '|' .. count)
  redis.call('PEXPIRE', KEYS[1], lease * 2)
end
return 1
