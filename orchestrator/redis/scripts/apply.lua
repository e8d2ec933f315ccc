-- Applies one chain transition atomically, if its precondition holds: the
-- compare-and-set every state change goes through (one EVALSHA per step
-- transition). The C++ side (RedisChainStore) computes the new chain and the
-- side effects; this script checks the precondition and performs them.
--
-- KEYS[1]  cv:{id}:meta (mode 'due': cv:{q}:blob_expiry); KEYS[2..] every
--          other key an op names (by index).
-- ARGV[1]  mode: 'cas'    meta.version must equal ARGV[2];
--                'create' meta must not exist; if ARGV[2] ~= '' it is the
--                         idempotency value, SET NX on KEYS[2] with EX ARGV[3];
--                'due'    member ARGV[2] of the zset KEYS[1] must have a score
--                         <= ARGV[3] (a chain whose blobs are due to be freed).
-- ARGV[4]  number of ops; then per op: command, key index (0 = no key), argc,
--          args... Only the commands below are accepted, and these of ours:
--   BLOBSET  key=blob, args {bytes, counter key index...}: SET, and add the
--            size change to each counter (the store's and the tenant's), so a
--            counter always equals the bytes held.
--   BLOBDEL  key=blob, args {counter key index...}: DEL, subtracting its size.
--   REQUIRE  key=any: precondition, the key must exist (else {'GONE', key}).
--   BLOBCAP  key=counter, args {max, incoming[, quota]}: precondition,
--            counter < max and counter + incoming <= max (else {'FULL', n} or,
--            naming a tenant quota, {'QUOTA', n, quota}). Counts bytes or chains.
-- Preconditions (REQUIRE, BLOBCAP) are all checked before anything is written:
-- a script cannot roll back, so a refusal must come before the first write.
-- Returns {'OK'} | {'STALE', version} | {'MISSING'} | {'IDEM', value} |
--         {'EXISTS'} | {'GONE', key} | {'FULL', bytes} | {'QUOTA', n, quota} |
--         {'NOTDUE'}
-- Exactly the commands RedisChainStore emits; no plain SET, so a blob is
-- never written past the BLOBSET accounting.
local allowed = {
  HSET = true, HINCRBY = true, INCRBY = true, XADD = true, XACK = true, XDEL = true, ZADD = true,
  ZREM = true, DEL = true, EXPIRE = true, PERSIST = true, PUBLISH = true,
  BLOBSET = true, BLOBDEL = true, REQUIRE = true, BLOBCAP = true,
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
    local existing = redis.call('GET', KEYS[2])
    if existing then return {'IDEM', existing} end
  end
elseif mode == 'due' then
  local score = redis.call('ZSCORE', meta, ARGV[2])
  if not score or tonumber(score) > tonumber(ARGV[3]) then return {'NOTDUE'} end
else
  return redis.error_reply('apply.lua: bad mode ' .. tostring(mode))
end
local n = tonumber(ARGV[4])

-- Pass 1: validate every op and check the preconditions.
local i = 5
for _ = 1, n do
  local cmd = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  local argc = tonumber(ARGV[i + 2])
  if not allowed[cmd] then return redis.error_reply('apply.lua: command not allowed: ' .. cmd) end
  if cmd == 'REQUIRE' then
    if redis.call('EXISTS', KEYS[k]) == 0 then return {'GONE', KEYS[k]} end
  elseif cmd == 'BLOBCAP' then
    local max = tonumber(ARGV[i + 3])
    local incoming = tonumber(ARGV[i + 4])
    local held = tonumber(redis.call('GET', KEYS[k]) or '0')
    if max > 0 and (held >= max or held + incoming > max) then
      if argc >= 3 then return {'QUOTA', tostring(held), ARGV[i + 5]} end
      return {'FULL', tostring(held)}
    end
  end
  i = i + 3 + argc
end

if mode == 'create' and ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end

-- Pass 2: the writes.
i = 5
for _ = 1, n do
  local cmd = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  local argc = tonumber(ARGV[i + 2])
  if cmd == 'BLOBSET' then
    local bytes = ARGV[i + 3]
    local delta = string.len(bytes) - redis.call('STRLEN', KEYS[k])
    redis.call('SET', KEYS[k], bytes)
    if delta ~= 0 then
      for j = 2, argc do redis.call('INCRBY', KEYS[tonumber(ARGV[i + 2 + j])], delta) end
    end
  elseif cmd == 'BLOBDEL' then
    local held = redis.call('STRLEN', KEYS[k])
    if redis.call('DEL', KEYS[k]) == 1 and held > 0 then
      for j = 1, argc do redis.call('DECRBY', KEYS[tonumber(ARGV[i + 2 + j])], held) end
    end
  elseif cmd ~= 'REQUIRE' and cmd ~= 'BLOBCAP' then
    local args = {}
    if k > 0 then args[1] = KEYS[k] end
    for j = 1, argc do args[#args + 1] = ARGV[i + 2 + j] end
    redis.call(cmd, unpack(args))
  end
  i = i + 3 + argc
end
return {'OK'}
