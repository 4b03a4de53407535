-- Sliding-window rate limits, all checked and counted in one call.
-- KEYS[i]: a counter's name. ARGV[2i-1]: its limit per minute, ARGV[2i]: this request's cost.
-- A counter's use is this minute's count plus the previous minute's, weighted by how much of the
-- previous minute is still inside the last 60 s. Either every counter admits the cost and all are
-- counted, or none is counted.
-- Returns {admitted (1|0), refusing counter (0 if none), retry after ms, window, reset ms, used...}.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = math.floor(ms / 60000)
local elapsed = ms - window * 60000
local reset = 60000 - elapsed
local used = {}
local current = {}
local previous = {}
for i, key in ipairs(KEYS) do
  current[i] = tonumber(redis.call('GET', key .. ':' .. window) or '0')
  previous[i] = tonumber(redis.call('GET', key .. ':' .. (window - 1)) or '0')
  used[i] = current[i] + math.floor(previous[i] * reset / 60000)
end
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local cost = tonumber(ARGV[2 * i])
  if used[i] + cost > limit then
    local retry = reset
    local room = limit - current[i] - cost
    if room >= 0 and previous[i] > 0 then
      -- the previous minute's weight must shrink to `room`: it does so linearly over this minute
      retry = math.max(1, math.ceil(60000 * (1 - room / previous[i])) - elapsed)
    end
    local result = {0, i, retry, window, reset}
    for j = 1, #KEYS do result[5 + j] = used[j] end
    return result
  end
end
local result = {1, 0, 0, window, reset}
for i, key in ipairs(KEYS) do
  local name = key .. ':' .. window
  local cost = tonumber(ARGV[2 * i])
  redis.call('INCRBY', name, cost)
  redis.call('PEXPIRE', name, 130000)
  result[5 + i] = used[i] + cost
end
return result
