--[[
  Puts the opening draw's winners in the gate, after MongoDB holds them: each gets a durable
  winner entry (so a later claim answers ALREADY_ISSUED), their sequences count as taken, and
  the last chunk marks the draw applied (held claims are answered, first come, first served
  begins). Only the holder of the current fencing token may apply: a runner that lost its lease
  (stalled, then replaced) changes nothing. Repeating a chunk is harmless (same values).

  KEYS[1] meta, KEYS[2] winners, KEYS[3] free (see claim-4.lua), KEYS[4] draw (see draw-enter-2.lua)

  ARGV[1] fencing token (from draw-close-4.lua)
  ARGV[2] highest sequence the draw hands out (0 if none)
  ARGV[3] 1 on the last chunk: mark the draw applied
  ARGV[4..] triples: userId, winner entry ("=sequence:issuedAtMs:issuanceId"), sequence

  Reply: 1 applied, 0 the gate's state is not loaded (load it, then repeat), -1 fenced out.
]]
if redis.call('HGET', KEYS[4], 'fence') ~= ARGV[1] then
  return -1
end
local meta = redis.call('HMGET', KEYS[1], 'total', 'seq')
if not meta[1] or not meta[2] then
  return 0
end
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZREM', KEYS[3], ARGV[i + 2])
end
if tonumber(meta[2]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[4], 'applied', 1)
end
return 1
