--[[
  The user already held an issuance in MongoDB that Redis did not know about (Redis lost data):
  the new reservation is undone, its sequence handed back, and the stored issuance adopted.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)
  ARGV[1] userId
  ARGV[2] issuanceId of the reservation being undone
  ARGV[3] its sequence
  ARGV[4] the stored issuance as a winner entry NOT marked durable ("sequence:issuedAtMs:issuanceId"):
          it was read from MongoDB before this script and may have been cancelled since, so the
          user's next claim checks it in MongoDB first (see revoke-3.lua)

  Meta is only updated, never created: without it (lost) the coupon is not loaded, and the next
  access rebuilds it from MongoDB; a meta made of a version alone would pass for loaded.

  Reply: 1 when the reservation was undone, 0 when it was no longer there.
]]
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held or string.sub(held, -(#ARGV[2] + 1)) ~= ':' .. ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[3])
if redis.call('HEXISTS', KEYS[1], 'total') == 1 then
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 1
