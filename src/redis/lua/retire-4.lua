--[[
  Removes an ENDED coupon's claim state once nothing can change it: Redis holds what is live.
  Only when meta's own end (Redis's clock) lies at least the retention in the past and no
  reservation still waits for its MongoDB write. A coupon reopened meanwhile (define-2.lua moved
  or removed its end) is left alone; its state is rebuilt from MongoDB on demand anyway.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)
  ARGV[1] retention in ms after endsAt

  Reply: 1 removed; 0 nothing to remove (not loaded, or no end: reopened); -1 not yet (ended
  less than the retention ago by Redis's clock, or writes pending): ask again later.
]]
local meta = redis.call('HMGET', KEYS[1], 'endsAt', 'seq')
if not meta[1] or not meta[2] then
  return 0
end
local endsAt = tonumber(meta[1])
if endsAt == 0 then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if now < endsAt + tonumber(ARGV[1]) or redis.call('ZCARD', KEYS[3]) > 0 then
  return -1
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
