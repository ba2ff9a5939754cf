--[[
  Reads, in one consistent step, what an instance needs to answer a sold-out coupon's claims from
  memory (src/claims/sold-out-memory.ts): the stock position, and, when no unit is free, every
  winner with whether MongoDB is known to hold it. Read only; one call per coupon per instance
  when it sells out, not per claim.

  KEYS[1] meta, KEYS[2] winners, KEYS[3] pending, KEYS[4] free (see claim-4.lua)

  Reply: { loaded (0|1), remaining, epoch, version, soldOut (0|1), winners, pending }
    soldOut is 1 when no unit is free and the winners hash holds exactly one entry per sequence
    taken (a state that lost entries is not answered from memory: claim-4.lua calls it suspect).
    winners: flat userId, entry pairs ("=sequence:issuedAtMs:issuanceId" once durable), and
    pending: the userIds whose MongoDB write is unconfirmed; both empty unless soldOut is 1.
    (epoch, version) is the stock position: every script that changes the stock or the winners
    moves it (claim-4, adopt-4, revoke-3, cancel-4, define-2 bump version; load-4 sets a new
    epoch), except confirm-2, which only marks entries durable.
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq', 'epoch', 'version')
-- A meta without its fields is not a loaded state (see load-4.lua).
if not meta[1] or not meta[2] then
  return { 0, 0, 0, 0, 0, {}, {} }
end
local total = tonumber(meta[1])
local remaining = total - tonumber(meta[2]) + redis.call('ZCARD', KEYS[4])
local epoch = tonumber(meta[3])
local version = tonumber(meta[4])
if remaining > 0 or redis.call('HLEN', KEYS[2]) ~= total - remaining then
  return { 1, remaining, epoch, version, 0, {}, {} }
end
return { 1, remaining, epoch, version, 1, redis.call('HGETALL', KEYS[2]), redis.call('ZRANGE', KEYS[3], 0, -1) }
