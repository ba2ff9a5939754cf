--[[
  Claims one coupon for one user in a single atomic step: already won? open? stock left?
  The winner gets the next sequence (a handed-back one first) and a pending mark that is
  cleared once MongoDB holds the issuance.

  KEYS[1] meta     hash: total, startsAt, endsAt (epoch ms, 0 = no end), seq (highest sequence
                   handed out), version (bumped on every change of stock), epoch (when
                   the state was loaded; orders versions across rebuilds)
  KEYS[2] winners  hash: userId -> "sequence:issuedAtMs:issuanceId" for a reservation, the same
                   with a leading "=" once MongoDB is known to hold it (confirm-2.lua, or loaded
                   from MongoDB)
  KEYS[3] pending  zset: userId scored by reservation time (ms), not yet confirmed in MongoDB
  KEYS[4] free     zset: sequences handed back, scored by sequence, reused lowest first

  ARGV[1] userId
  ARGV[2] issuanceId for a new win. A re-sent command carries the same id, so running the
          script twice for one request reports ISSUED both times with the same issuance.

  Reply: { status, remaining, version, sequence, issuedAtMs, issuanceId, pending, suspect }
    status is ISSUED, ALREADY_ISSUED, SOLD_OUT, NOT_STARTED, ENDED or NOT_LOADED
    (no meta, or a meta without its fields: the coupon's state must be loaded from MongoDB first).
    pending is 1 when the winner is not known to be in MongoDB: its pending mark is there, or
    its entry is not marked durable (a lost pending mark proves nothing).
    suspect is 1 on SOLD_OUT and ENDED when the winners hash holds fewer entries than the
    sequences taken: winner entries were lost, and this user may be one of them.
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'startsAt', 'endsAt', 'seq', 'version')
if not meta[1] or not meta[4] then
  return { 'NOT_LOADED', 0, 0, 0, 0, '', 0, 0 }
end
local total = tonumber(meta[1])
local startsAt = tonumber(meta[2])
local endsAt = tonumber(meta[3])
local seq = tonumber(meta[4])
local version = tonumber(meta[5])
local remaining = total - seq + redis.call('ZCARD', KEYS[4])

local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  local durable, sequence, issuedAt, issuanceId = string.match(held, '^(=?)(%d+):(%d+):(.+)$')
  local status = 'ALREADY_ISSUED'
  if issuanceId == ARGV[2] then
    status = 'ISSUED'
  end
  local pending = (durable == '' or redis.call('ZSCORE', KEYS[3], ARGV[1])) and 1 or 0
  return { status, remaining, version, tonumber(sequence), tonumber(issuedAt), issuanceId, pending, 0 }
end

-- Every sequence taken has its winner entry; fewer entries mean some were lost.
local function suspect()
  return redis.call('HLEN', KEYS[2]) < total - remaining and 1 or 0
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if now < startsAt then
  return { 'NOT_STARTED', remaining, version, 0, 0, '', 0, 0 }
end
if endsAt > 0 and now >= endsAt then
  return { 'ENDED', remaining, version, 0, 0, '', 0, suspect() }
end
if remaining <= 0 then
  return { 'SOLD_OUT', 0, version, 0, 0, '', 0, suspect() }
end

local sequence
local reused = redis.call('ZPOPMIN', KEYS[4])
if reused[1] then
  sequence = tonumber(reused[1])
else
  seq = seq + 1
  sequence = seq
  redis.call('HSET', KEYS[1], 'seq', seq)
end
version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[2], ARGV[1], sequence .. ':' .. now .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[1])
return { 'ISSUED', remaining - 1, version, sequence, now, ARGV[2], 1, 0 }
