--[[
  Reads a coupon's live stock in one consistent step.

  KEYS[1] meta, KEYS[2] free (see claim-4.lua)

  Reply: { loaded (0|1), total, remaining, epoch, version }
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq', 'epoch', 'version')
-- A meta without its fields is not a loaded state (see load-4.lua).
if not meta[1] or not meta[2] then
  return { 0, 0, 0, 0, 0 }
end
local total = tonumber(meta[1])
return { 1, total, total - tonumber(meta[2]) + redis.call('ZCARD', KEYS[2]), tonumber(meta[3]), tonumber(meta[4]) }
