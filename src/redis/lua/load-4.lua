--[[
  Publishes a coupon's state rebuilt from MongoDB, unless another instance did it first.
  The winners were written before this call; meta is written last because its presence is
  what lets claims run.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)
  ARGV[1] total, ARGV[2] startsAt (ms), ARGV[3] endsAt (ms, 0 = none)
  ARGV[4] highest sequence in MongoDB
  ARGV[5] the coupon's revision in MongoDB, kept as `rev` (see define-2.lua)
  ARGV[6..] sequences below it that MongoDB does not hold (handed back for reuse)

  Reply: 1 when this call loaded the state, 0 when it was already there.
  A meta without its fields (a version alone, left by an older adopt or revoke after meta was
  lost) is not a loaded state: it is replaced.
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq')
if meta[1] and meta[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[4])
for i = 6, #ARGV do
  redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i])
end
-- The epoch (load time) orders versions across rebuilds: a rebuilt coupon counts from 1 again.
local time = redis.call('TIME')
local epoch = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'startsAt', ARGV[2], 'endsAt', ARGV[3], 'seq', ARGV[4], 'rev', ARGV[5], 'version', 1, 'epoch', epoch)
return 1
