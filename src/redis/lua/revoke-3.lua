--[[
  A reservation's sequence is already held in MongoDB by another user (Redis was rebuilt while
  that write was in flight): the reservation is dropped and the real holder recorded. The
  sequence is not handed back, because it is taken.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending (see claim-4.lua)
  ARGV[1] userId of the dropped reservation
  ARGV[2] its issuanceId
  ARGV[3] userId holding the sequence in MongoDB
  ARGV[4] that user's issuance as a winner entry NOT marked durable ("sequence:issuedAtMs:issuanceId")

  The holder was read from MongoDB before this script and may have been cancelled since: a cancel
  that found no entry of it here changed nothing in Redis. So the holder's entry goes in (if the
  holder has none) without the durable mark: it is never answered ALREADY_ISSUED straight from
  Redis, the holder's next claim checks it in MongoDB first (a cancelled one is dropped and its
  unit returned, see ClaimService.settle), and the reconciler counts it against MongoDB. A durable
  mark here could restore a cancelled winner until the next reconciliation pass.

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
