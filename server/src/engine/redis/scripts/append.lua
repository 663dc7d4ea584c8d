-- Appends a batch to a room: numbers the new messages after the stored head (skipping client ids
-- already stored, which get their earlier numbers), moves the head and publishes it, then applies
-- retention: the room's oldest entries that the count or age limit no longer keeps go (at most
-- 100 per call, their client-id records with them), and with an age limit the log and the ids
-- expire that long after this last message. The head (meta) never expires: numbering continues.
-- An edit or a delete (kind 1 or 2, of `target`) is stored like a message and then applied: its
-- target's latest state is kept in the `patch` sorted set (score: the target's number; member: a
-- JSON object), which reads lay over the stream. Stream entries cannot be rewritten, so a delete
-- removes the target's entry (and those of its edits) with XDEL and keeps in `patch` only what a
-- placeholder needs: no text.
-- KEYS: meta, log, ids, live, patch. ARGV: the message count, messages kept (0: all), cutoff ms (0:
-- none), age limit ms (0: none), then id, sender, text, ts, client id, user id ('' for a guest),
-- kind (0 message, 1 edit, 2 delete), target (0: none) for each message. Returns
-- {seq, ts, 1 if stored now} per message. __PUBLISH__ is PUBLISH, or SPUBLISH on a Cluster.
local stored_head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local head = stored_head
local head_ts = redis.call('HGET', KEYS[1], 'ts') or '0'
local n = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local max_age = tonumber(ARGV[4])
local out = {}

local function patch_of(seq)
  local found = redis.call('ZRANGEBYSCORE', KEYS[5], seq, seq)
  if found[1] then return cjson.decode(found[1]) end
  return nil
end

local function save_patch(seq, p)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], seq, seq)
  redis.call('ZADD', KEYS[5], seq, cjson.encode(p))
end

-- An entry's fields without its text, for a placeholder; nil if the entry is gone.
local function without_text(seq)
  local entry = redis.call('XRANGE', KEYS[2], seq .. '-1', seq .. '-1')[1]
  if not entry then return nil end
  local kept = {}
  local fields = entry[2]
  for f = 1, #fields, 2 do
    if fields[f] ~= 'text' then kept[fields[f]] = fields[f + 1] end
  end
  return kept
end

local function apply_change(seq, kind, target, text, ts)
  local p = patch_of(target) or {}
  if p.deleted then return end
  if kind == 1 then
    p.text = text
    p.edited_at_ms = tonumber(ts)
    p.edits = p.edits or {}
    table.insert(p.edits, seq)
    save_patch(target, p)
  elseif kind == 2 then
    local entry = without_text(target)
    if not entry or (entry.kind and entry.kind ~= '0') then return end
    for _, edit in ipairs(p.edits or {}) do
      local gone = without_text(edit)
      if gone then
        save_patch(edit, {deleted = true, entry = gone, seq = edit})
        redis.call('XDEL', KEYS[2], edit .. '-1')
      end
    end
    save_patch(target, {deleted = true, entry = entry, seq = target})
    redis.call('XDEL', KEYS[2], target .. '-1')
  end
end

for i = 0, n - 1 do
  local b = 5 + i * 8
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
    local fields = {'id', ARGV[b], 'sender', ARGV[b + 1], 'text', ARGV[b + 2], 'ts', ts,
      'cid', cid}
    if ARGV[b + 5] ~= '' then
      table.insert(fields, 'uid')
      table.insert(fields, ARGV[b + 5])
    end
    local kind = tonumber(ARGV[b + 6])
    if kind ~= 0 then
      table.insert(fields, 'kind')
      table.insert(fields, ARGV[b + 6])
      table.insert(fields, 'target')
      table.insert(fields, ARGV[b + 7])
    end
    redis.call('XADD', KEYS[2], head .. '-1', unpack(fields))
    if kind ~= 0 then apply_change(head, kind, tonumber(ARGV[b + 7]), ARGV[b + 2], ts) end
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
  if min_kept then
    redis.call('XTRIM', KEYS[2], 'MINID', min_kept .. '-0')
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. min_kept)
  end
end
if max_age > 0 and head > stored_head then
  redis.call('PEXPIRE', KEYS[2], max_age)
  redis.call('PEXPIRE', KEYS[3], max_age)
  redis.call('PEXPIRE', KEYS[5], max_age)
end
return out
