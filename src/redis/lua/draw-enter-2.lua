--[[
  Enters a user in a coupon's opening draw (contract v3, "Fair opening"), by Redis's clock.
  The member is "rankKey:userId", where rankKey is HMAC-SHA256(seed, userId) in lowercase hex,
  computed by the service: all scores are 0, so the set's order is the ranking (lowest first),
  and a user's repeated claims are the same member, one entry.

  KEYS[1] draw     hash: closed (1 once the draw began), fence, owner, lockUntil, units, baseSeq,
                   freeSeqs, applied (1 once the winners are durable and in the gate), done
  KEYS[2] entries  zset: "rankKey:userId", score 0

  ARGV[1] member ("rankKey:userId")
  ARGV[2] startsAt (epoch ms)
  ARGV[3] openingDrawMs
  ARGV[4] endsAt (epoch ms, 0 = no end)

  Reply: { status, added }
    status is NOT_STARTED (before startsAt), ENDED (at or after endsAt), CLOSED (the window is
    over or the draw began: first come, first served once the draw is applied) or ENTERED;
    added is 1 when this call made the entry, 0 when the user had entered already.
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local startsAt = tonumber(ARGV[2])
local endsAt = tonumber(ARGV[4])
if now < startsAt then
  return { 'NOT_STARTED', 0 }
end
if endsAt > 0 and now >= endsAt then
  return { 'ENDED', 0 }
end
if now >= startsAt + tonumber(ARGV[3]) or redis.call('HGET', KEYS[1], 'closed') then
  return { 'CLOSED', 0 }
end
return { 'ENTERED', redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[1]) }
