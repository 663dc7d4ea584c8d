-- The other nodes' live parts of a room's roster; drops lapsed leases (nodes that died
-- without leaving).
-- KEYS: roster hash. ARGV: this node's id. Returns the JSON rosters.
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local sep = string.find(value, '|', 1, true)
  local expires = tonumber(string.sub(value, 1, sep - 1))
  if expires < now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    table.insert(out, string.sub(value, sep + 1))
  end
end
return out
