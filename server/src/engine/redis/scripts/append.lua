-- Appends a batch to a room: numbers the new messages after the stored head, skips client ids
-- already stored (they get their earlier numbers), moves the head and publishes it.
-- KEYS: meta, log, ids, live. ARGV: the message count, then id, sender, text, ts, client id for
-- each. Returns {seq, ts, 1 if stored now} per message. __PUBLISH__ is PUBLISH, or SPUBLISH on a
-- Cluster.
local stored_head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local head = stored_head
local head_ts = redis.call('HGET', KEYS[1], 'ts') or '0'
local n = tonumber(ARGV[1])
local out = {}
for i = 0, n - 1 do
  local b = 2 + i * 5
  local cid = ARGV[b + 4]
  local old = redis.call('HGET', KEYS[3], cid)
  if old then
    local entry = redis.call('XRANGE', KEYS[2], old .. '-1', old .. '-1')
    local ts = 0
    if entry[1] then
      local fields = entry[1][2]
      for f = 1, #fields, 2 do
        if fields[f] == 'ts' then ts = tonumber(fields[f + 1]) end
      end
    end
    out[#out + 1] = {tonumber(old), ts, 0}
  else
    head = head + 1
    local ts = ARGV[b + 3]
    if tonumber(ts) < tonumber(head_ts) then ts = head_ts end
    head_ts = ts
    redis.call('XADD', KEYS[2], head .. '-1', 'id', ARGV[b], 'sender', ARGV[b + 1],
      'text', ARGV[b + 2], 'ts', ts, 'cid', cid)
    redis.call('HSET', KEYS[3], cid, head)
    out[#out + 1] = {head, tonumber(ts), 1}
  end
end
if head > stored_head then
  redis.call('HSET', KEYS[1], 'seq', head, 'ts', head_ts)
  redis.call('__PUBLISH__', KEYS[4], 'h' .. head)
end
return out
