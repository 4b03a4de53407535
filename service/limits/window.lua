-- Leases of sliding-window rate limits: each counter grants what it can of the units asked for,
-- counts them at once (the process then spends them locally) and reports its counts.
-- KEYS[i]: a counter's name. ARGV[2i-1]: its limit per minute, ARGV[2i]: the units wanted.
-- A counter's use is this minute's count plus the previous minute's, weighted by how much of the
-- previous minute is still inside the last 60 s; it grants min(wanted, limit - use), at least 0.
-- Returns {window, ms elapsed in it, then per counter: granted, this minute's count, previous's}.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = math.floor(ms / 60000)
local elapsed = ms - window * 60000
local reset = 60000 - elapsed
local result = {window, elapsed}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local wanted = tonumber(ARGV[2 * i])
  local name = key .. ':' .. window
  local current = tonumber(redis.call('GET', name) or '0')
  local previous = tonumber(redis.call('GET', key .. ':' .. (window - 1)) or '0')
  local used = current + math.floor(previous * reset / 60000)
  local granted = math.max(0, math.min(wanted, limit - used))
  if granted > 0 then
    current = redis.call('INCRBY', name, granted)
    redis.call('PEXPIRE', name, 130000)
  end
  result[#result + 1] = granted
  result[#result + 1] = current
  result[#result + 1] = previous
end
return result
