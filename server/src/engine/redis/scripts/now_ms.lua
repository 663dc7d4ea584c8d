-- Prepended to the scripts that need time: Redis's own clock in milliseconds, so that leases
-- and rate limits do not depend on the nodes' clocks agreeing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
