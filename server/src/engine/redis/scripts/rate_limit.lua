-- GCRA over all nodes, in microseconds on Redis's own clock (so node clocks do not matter).
-- KEYS: the budget's key. ARGV: emission interval µs, burst, cost (how many it spends).
-- Returns 0 when allowed (and spent), else how many µs until it would be.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local allowed_at = tat + interval * cost - interval * burst
if now < allowed_at then
  return allowed_at - now
end
local next_tat = tat + interval * cost
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
  math.ceil((next_tat - now) / 1000) + 1000)
return 0
