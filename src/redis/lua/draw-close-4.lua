--[[
  Begins (or resumes) a coupon's opening draw for one runner: closes the entries, fixes what the
  draw shares out the first time (units available, the sequences they take), and hands the
  runner a lease with a fencing token. Any number of instances may call it; one runner at a time
  holds the lease, and a runner killed mid-draw is replaced once its lease runs out.

  KEYS[1] meta, KEYS[2] free (see claim-4.lua), KEYS[3] draw, KEYS[4] entries (see draw-enter-2.lua)

  ARGV[1] runner token (unique per run)
  ARGV[2] window end, startsAt + openingDrawMs (epoch ms)
  ARGV[3] lease (ms)

  Reply: { status, fence, units, baseSeq, freeSeqs, entrants, applied, waitMs }
    status: OK (the caller holds the lease with token `fence`), DONE (the draw is finished),
    BUSY (another runner's lease is in force), EARLY (Redis's clock is before the window's end;
    waitMs to go), NOT_LOADED (the gate's state must be loaded first).
    units: units available when the draw closed (total - seq + |free| at that moment);
    baseSeq and freeSeqs (comma-separated, ascending): the sequences they take, free ones first.
    applied: 1 once the winners were written to MongoDB and put in the gate.
]]
local d = redis.call('HMGET', KEYS[3], 'done', 'closed', 'owner', 'lockUntil', 'applied')
if d[1] then
  return { 'DONE', 0, 0, 0, '', 0, 1, 0 }
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local windowEnd = tonumber(ARGV[2])
if now < windowEnd then
  return { 'EARLY', 0, 0, 0, '', 0, 0, windowEnd - now }
end
if d[3] and d[3] ~= ARGV[1] and tonumber(d[4]) > now then
  return { 'BUSY', 0, 0, 0, '', 0, 0, tonumber(d[4]) - now }
end
if not d[2] then
  local meta = redis.call('HMGET', KEYS[1], 'total', 'seq')
  if not meta[1] or not meta[2] then
    return { 'NOT_LOADED', 0, 0, 0, '', 0, 0, 0 }
  end
  local free = redis.call('ZRANGE', KEYS[2], 0, -1)
  local units = tonumber(meta[1]) - tonumber(meta[2]) + #free
  if units < 0 then
    units = 0
  end
  redis.call('HSET', KEYS[3], 'closed', 1, 'units', units, 'baseSeq', meta[2], 'freeSeqs', table.concat(free, ','))
end
local fence = redis.call('HINCRBY', KEYS[3], 'fence', 1)
redis.call('HSET', KEYS[3], 'owner', ARGV[1], 'lockUntil', now + tonumber(ARGV[3]))
local s = redis.call('HMGET', KEYS[3], 'units', 'baseSeq', 'freeSeqs')
return { 'OK', fence, tonumber(s[1]), tonumber(s[2]), s[3] or '', redis.call('ZCARD', KEYS[4]), d[5] and 1 or 0, 0 }
