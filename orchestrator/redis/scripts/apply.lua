-- Applies one chain transition atomically, if its precondition holds: the
-- compare-and-set every state change goes through (one EVALSHA per step
-- transition). The C++ side (RedisChainStore) computes the new chain and the
-- side effects; this script checks the precondition and performs them.
--
-- KEYS[1]  cv:{id}:meta; KEYS[2..] every other key an op names (by index).
-- ARGV[1]  mode: 'cas'    meta.version must equal ARGV[2];
--                'create' meta must not exist; if ARGV[2] ~= '' it is the
--                         idempotency value, SET NX on KEYS[2] with EX ARGV[3].
-- ARGV[4]  number of ops; then per op: command, key index (0 = no key), argc,
--          args... Only the commands below are accepted.
-- Returns {'OK'} | {'STALE', version} | {'MISSING'} | {'IDEM', value} | {'EXISTS'}
local allowed = {
  HSET = true, HDEL = true, HINCRBY = true, XADD = true, XACK = true, XDEL = true,
  ZADD = true, ZREM = true, DEL = true, EXPIRE = true, PERSIST = true, SET = true,
  PUBLISH = true, PEXPIRE = true,
}
local meta = KEYS[1]
local mode = ARGV[1]
if mode == 'cas' then
  local v = redis.call('HGET', meta, 'version')
  if not v then return {'MISSING'} end
  if v ~= ARGV[2] then return {'STALE', v} end
elseif mode == 'create' then
  if redis.call('EXISTS', meta) == 1 then return {'EXISTS'} end
  if ARGV[2] ~= '' then
    local ok = redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3])
    if not ok then return {'IDEM', redis.call('GET', KEYS[2])} end
  end
else
  return redis.error_reply('apply.lua: bad mode ' .. tostring(mode))
end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  local cmd = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  local argc = tonumber(ARGV[i + 2])
  if not allowed[cmd] then return redis.error_reply('apply.lua: command not allowed: ' .. cmd) end
  local args = {}
  if k > 0 then args[1] = KEYS[k] end
  for j = 1, argc do args[#args + 1] = ARGV[i + 2 + j] end
  redis.call(cmd, unpack(args))
  i = i + 3 + argc
end
return {'OK'}
