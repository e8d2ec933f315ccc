-- Moves delayed retries whose due time has come into their ready stream.
-- KEYS[1] cv:{q}:delayed; KEYS[2..4] ready streams high, normal, low.
-- ARGV[1] now (ms); ARGV[2] at most this many entries.
-- Members: "<chain id>|<step>|<qtoken>|<priority number>|<stage kind number>|<input blob>".
-- Returns {moved, next due ms or ''}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  local id, step, token, prio, kind, blob =
    string.match(m, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
  if id then
    local key = KEYS[3]
    if prio == '3' then key = KEYS[2] elseif prio == '1' then key = KEYS[4] end
    redis.call('XADD', key, '*', 'c', id, 's', step, 't', token, 'k', kind, 'b', blob)
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or ''}
