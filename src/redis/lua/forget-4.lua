--[[
  Drops a coupon's Redis state so that the next access rebuilds it from MongoDB, but only if
  nothing changed since the reconciler inspected it (same epoch and version) and no reservation
  is waiting for its MongoDB write: a repair must never race a claim.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)
  ARGV[1] epoch and ARGV[2] version, as inspect-4.lua read them

  Nor while an admin change holds a narrowed definition (define-2.lua): a rebuild would load the
  wider one MongoDB still holds and let claims past the change's check.

  Reply: 1 when the state was dropped, 0 when it had changed (nothing done).
]]
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'version', 'hold')
if not meta[1] or tonumber(meta[1]) ~= tonumber(ARGV[1]) or tonumber(meta[2]) ~= tonumber(ARGV[2]) or redis.call('ZCARD', KEYS[3]) > 0 then
  return 0
end
if meta[3] then
  local time = redis.call('TIME')
  if tonumber(meta[3]) > tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) then
    return 0
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
