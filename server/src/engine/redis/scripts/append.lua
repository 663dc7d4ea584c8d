-- Appends a batch to a room: numbers the new messages after the stored head (skipping client ids
-- already stored, which get their earlier numbers), moves the head and publishes it, then applies
-- retention: the room's oldest entries that the count or age limit no longer keeps go (at most
-- 100 per call, their client-id records with them), and with an age limit the log and the ids
-- expire that long after this last message. The head (meta) never expires: numbering continues.
-- KEYS: meta, log, ids, live. ARGV: the message count, messages kept (0: all), cutoff ms (0: none),
-- age limit ms (0: none), then id, sender, text, ts, client id, user id ('' for a guest) for each
-- message. Returns
-- {seq, ts, 1 if stored now} per message. __PUBLISH__ is PUBLISH, or SPUBLISH on a Cluster.
local stored_head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local head = stored_head
local head_ts = redis.call('HGET', KEYS[1], 'ts') or '0'
local n = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local max_age = tonumber(ARGV[4])
local out = {}
for i = 0, n - 1 do
  local b = 5 + i * 6
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
    if ARGV[b + 5] == '' then
      redis.call('XADD', KEYS[2], head .. '-1', 'id', ARGV[b], 'sender', ARGV[b + 1],
        'text', ARGV[b + 2], 'ts', ts, 'cid', cid)
    else
      redis.call('XADD', KEYS[2], head .. '-1', 'id', ARGV[b], 'sender', ARGV[b + 1],
        'text', ARGV[b + 2], 'ts', ts, 'cid', cid, 'uid', ARGV[b + 5])
    end
    redis.call('HSET', KEYS[3], cid, head)
    out[#out + 1] = {head, tonumber(ts), 1}
  end
end
if head > stored_head then
  redis.call('HSET', KEYS[1], 'seq', head, 'ts', head_ts)
  redis.call('__PUBLISH__', KEYS[4], 'h' .. head)
end
if keep > 0 or cutoff > 0 then
  local min_kept = nil
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)) do
    local seq = tonumber(string.match(entry[1], '^(%d+)'))
    local ts, cid = 0, nil
    local fields = entry[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'ts' then ts = tonumber(fields[f + 1])
      elseif fields[f] == 'cid' then cid = fields[f + 1] end
    end
    if (keep > 0 and seq <= head - keep) or (cutoff > 0 and ts < cutoff) then
      if cid then redis.call('HDEL', KEYS[3], cid) end
      min_kept = seq + 1
    else
      break
    end
  end
  if min_kept then redis.call('XTRIM', KEYS[2], 'MINID', min_kept .. '-0') end
end
if max_age > 0 and head > stored_head then
  redis.call('PEXPIRE', KEYS[2], max_age)
  redis.call('PEXPIRE', KEYS[3], max_age)
end
return out
