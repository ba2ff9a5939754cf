--[[
  Puts a coupon's changed definition (updateCoupon, endCoupon, or the reconciler repairing Redis
  from MongoDB) into its claim state in one step, so claims see the new window and quantity at once.

  KEYS[1] meta, KEYS[2] free (see claim-4.lua)
  ARGV[1] total, ARGV[2] startsAt (ms), ARGV[3] endsAt (ms, 0 = none)
  ARGV[4] hold: until when (ms, Redis's clock) the reconciler must leave this definition alone,
          because the admin change that wrote it is still writing MongoDB; 0 clears the hold
  ARGV[5] mode:
          'admin'  refuses (reply -1) when total is below the sequences taken (seq - |free|):
                   claims may have won since the caller counted MongoDB
          'repair' (the reconciler) does nothing while a hold is in force (reply -2)

  Meta is only updated, never created: without it the coupon is not loaded, and the next access
  rebuilds it from MongoDB with the definition MongoDB holds by then.

  Reply: 1 updated, 0 not loaded, -1 total below taken (nothing done), -2 held (nothing done).
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq', 'hold')
if not meta[1] or not meta[2] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[5] == 'repair' and meta[3] and tonumber(meta[3]) > now then
  return -2
end
local taken = tonumber(meta[2]) - redis.call('ZCARD', KEYS[2])
if ARGV[5] == 'admin' and tonumber(ARGV[1]) < taken then
  return -1
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'startsAt', ARGV[2], 'endsAt', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[1], 'hold', now + tonumber(ARGV[4]))
else
  redis.call('HDEL', KEYS[1], 'hold')
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
