--[[
  A reservation's sequence is already held in MongoDB by another user (Redis was rebuilt while
  that write was in flight): the reservation is dropped and the real holder recorded. The
  sequence is not handed back, because it is taken.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending (see claim-4.lua)
  ARGV[1] userId of the dropped reservation
  ARGV[2] its issuanceId
  ARGV[3] userId holding the sequence in MongoDB
  ARGV[4] that user's issuance as a durable winner entry ("=sequence:issuedAtMs:issuanceId")

  Meta is only updated, never created (see adopt-4.lua).

  Reply: 1 when the reservation was dropped, 0 when it was no longer there.
]]
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held or string.sub(held, -(#ARGV[2] + 1)) ~= ':' .. ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
if redis.call('HEXISTS', KEYS[1], 'total') == 1 then
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 1
