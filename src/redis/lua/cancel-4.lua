--[[
  A cancelled issuance (already CANCELLED in MongoDB) leaves the claim state: its winner entry goes,
  and its sequence goes back to `free`, so the next claim wins it (lowest free first) and
  `remaining` rises by one, in one atomic step. The user may then claim again like anyone.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)
  ARGV[1] userId, ARGV[2] the cancelled issuanceId, ARGV[3] its sequence

  Only the cancelled issuance's own entry is removed: if the user's entry names another issuance
  (the user has claimed again since, or a rebuild from MongoDB already dropped it and gave the
  sequence back), nothing is done, so a repeated cancel never returns a unit twice. Meta is only
  updated, never created (see adopt-4.lua).

  Reply: 1 when the unit went back to stock, 0 when the entry was not there.
]]
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held or string.sub(held, -(#ARGV[2] + 1)) ~= ':' .. ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'total') == 1 then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 1
