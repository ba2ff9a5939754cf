--[[
  Extends an opening-draw runner's lease while it is still the holder (long entrant lists).

  KEYS[1] draw (see draw-enter-2.lua)
  ARGV[1] runner token, ARGV[2] lease (ms)

  Reply: 1 renewed, 0 the lease belongs to another runner now.
]]
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('HSET', KEYS[1], 'lockUntil', now + tonumber(ARGV[2]))
return 1
