--[[
  Puts a coupon's definition (its window and quantity) into its claim state in one step, so
  claims see it at once. Every definition carries MongoDB's revision of the coupon (the arbiter:
  updateCoupon and endCoupon change MongoDB only by compare-and-set on it), and meta remembers the
  revision it holds in `rev`, so a late or repeated write of an older definition never replaces a
  newer one.

  KEYS[1] meta, KEYS[2] free (see claim-4.lua)
  ARGV[1] total, ARGV[2] startsAt (ms), ARGV[3] endsAt (ms, 0 = none)
  ARGV[4] hold: for how long (ms, Redis's clock) a 'hold' keeps the state; unused otherwise
  ARGV[5] mode:
          'hold'   an admin change that narrows the coupon (lower total, earlier end, later
                   start), before it writes MongoDB: sets the narrowed definition (the
                   intersection of the old and the new, computed by the caller from revision
                   ARGV[6]) and holds it under token ARGV[7] until the change commits, is undone
                   or the hold expires. Refused: -1 when total is below the units taken, -5 when
                   a live sequence is above total (both atomic with claims), -3 when meta holds a
                   newer revision than ARGV[6] (the caller re-reads), -4 while another change's
                   hold is in force (the caller waits and re-reads).
          'commit' revision ARGV[6] is stored in MongoDB: set it unless meta holds it or a newer
                   one (-3). A hold on an older revision is cleared (that change lost its
                   compare-and-set); a hold on this revision or a newer one was computed from this
                   definition already: only `rev` moves, the held definition stays (-3).
          'undo'   the change holding token ARGV[7] did not reach MongoDB: put back its old
                   definition (revision ARGV[6]) and drop the hold; -3 when the hold is not that
                   change's any more (nothing done).
          'repair' (the reconciler, the loader) MongoDB's definition at revision ARGV[6]: set it
                   unless a hold is in force (-2) or meta holds a newer revision (-3).
  ARGV[6] revision, ARGV[7] token (hold and undo)

  Meta is only updated, never created: without it the coupon is not loaded, and the next access
  rebuilds it from MongoDB with the definition (and revision) MongoDB holds by then. A meta
  without `rev` (loaded by an older version) counts as revision -1.

  Reply: 1 updated, 0 not loaded, -1 total below taken, -2 held, -3 stale, -4 busy,
         -5 total below a live sequence (all but 1: nothing done).
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq', 'hold', 'holdToken', 'holdBase', 'rev')
if not meta[1] or not meta[2] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local mode = ARGV[5]
local revision = tonumber(ARGV[6])
local rev = tonumber(meta[6] or '-1')
local held = meta[3] and tonumber(meta[3]) > now
local total = tonumber(ARGV[1])

local function clearHold()
  redis.call('HDEL', KEYS[1], 'hold', 'holdToken', 'holdBase')
end
local function setDefinition()
  redis.call('HSET', KEYS[1], 'total', ARGV[1], 'startsAt', ARGV[2], 'endsAt', ARGV[3])
end

if mode == 'hold' then
  if rev > revision then
    return -3
  end
  if held and meta[4] ~= ARGV[7] then
    return -4
  end
  local seq = tonumber(meta[2])
  if total < seq - redis.call('ZCARD', KEYS[2]) then
    return -1
  end
  -- The highest sequence handed out and not handed back must stay within 1..total.
  local highest = seq
  while highest > total and redis.call('ZSCORE', KEYS[2], highest) do
    highest = highest - 1
  end
  if highest > total then
    return -5
  end
  setDefinition()
  redis.call('HSET', KEYS[1], 'hold', now + tonumber(ARGV[4]), 'holdToken', ARGV[7], 'holdBase', revision)
elseif mode == 'undo' then
  if meta[4] ~= ARGV[7] or rev > revision then
    return -3
  end
  setDefinition()
  clearHold()
elseif mode == 'commit' then
  if rev >= revision then
    return -3
  end
  if meta[5] and tonumber(meta[5]) >= revision then
    redis.call('HSET', KEYS[1], 'rev', revision)
    return -3
  end
  setDefinition()
  redis.call('HSET', KEYS[1], 'rev', revision)
  clearHold()
elseif mode == 'repair' then
  if held then
    return -2
  end
  if rev > revision then
    return -3
  end
  setDefinition()
  redis.call('HSET', KEYS[1], 'rev', revision)
  clearHold()
else
  return redis.error_reply('define: unknown mode ' .. tostring(mode))
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
