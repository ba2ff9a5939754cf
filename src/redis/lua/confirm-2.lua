--[[
  MongoDB now holds these winners' issuances: their pending marks go, and their winner entries
  are marked durable ("=" in front), so that a lost pending mark is never taken for proof that a
  reservation was written (claim-4.lua).

  KEYS[1] winners, KEYS[2] pending (see claim-4.lua)
  ARGV pairs: userId, the issuanceId MongoDB holds for that user

  Reply: how many entries were marked durable.
]]
local marked = 0
for i = 1, #ARGV, 2 do
  local user, id = ARGV[i], ARGV[i + 1]
  redis.call('ZREM', KEYS[2], user)
  local held = redis.call('HGET', KEYS[1], user)
  if held and string.sub(held, 1, 1) ~= '=' and string.sub(held, -(#id + 1)) == ':' .. id then
    redis.call('HSET', KEYS[1], user, '=' .. held)
    marked = marked + 1
  end
end
return marked
