--[[
  Reads a coupon's bookkeeping in one consistent step, for the reconciler to compare with MongoDB.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)

  Reply: { loaded (0|1), total, seq, free (count), winners (count), pending (count), epoch, version }
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq', 'epoch', 'version')
-- A meta without its fields is not a loaded state (see load-4.lua).
if not meta[1] or not meta[2] then
  return { 0, 0, 0, 0, 0, 0, 0, 0 }
end
return {
  1,
  tonumber(meta[1]),
  tonumber(meta[2]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('HLEN', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  tonumber(meta[3]),
  tonumber(meta[4]),
}
