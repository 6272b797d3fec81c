"""The Lua scripts of the ``redis`` store (:mod:`asyncz.plugins.stores.redis`).

Each script is one atomic step on the server. Every script gets the same ``KEYS`` list, in the
order of :data:`KEY_NAMES` (so that Redis Cluster sees every key a script touches; give the store
a prefix with a hash tag to keep them in one slot). The key list, the value encodings and the
reasons behind them are documented in the store's module docstring.

Numbers: Lua's are doubles, and turning one into a string with ``tostring`` (or passing it to
``redis.call``) keeps only 14 digits, so every number a script computes and writes (a time in
microseconds) goes through ``fmt`` first. Numbers that arrive as strings (``ARGV``, scores read
back) are passed on as they are.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACQUIRE",
    "ADD",
    "DELETE",
    "DUE",
    "FINISH",
    "FIRE",
    "HEARTBEAT",
    "KEY_NAMES",
    "REGISTER",
    "RELEASE",
    "RENEW",
    "TAKE_RERUNS",
    "UNREGISTER",
    "UPDATE",
]

#: The store's keys after its prefix, in the order of every script's ``KEYS``.
KEY_NAMES: Final = (
    "tasks",
    "run_times",
    "leases",
    "lease_info",
    "versions",
    "instances",
    "heartbeats",
    "runs",
    "runs_by_time",
    "runs_by_task",
    "started",
    "started_counts",
    "reruns",
    "meta",
)

_PRELUDE = """
local K_TASKS, K_RUN_TIMES, K_LEASES, K_LEASE_INFO, K_VERSIONS = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
local K_INSTANCES, K_HEARTBEATS, K_RUNS, K_RUNS_BY_TIME, K_RUNS_BY_TASK = KEYS[6], KEYS[7],
  KEYS[8], KEYS[9], KEYS[10]
local K_STARTED, K_STARTED_COUNTS, K_RERUNS, K_META = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local SEP = '\\31'

local function fmt(n) return string.format('%.0f', n) end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- lease info: '<run time us>|<token>|<owner>' (the token is hex; the owner may hold '|')
local function lease_parts(info)
  local a = string.find(info, '|', 1, true)
  local b = string.find(info, '|', a + 1, true)
  if not b then return string.sub(info, 1, a - 1), '', string.sub(info, a + 1) end
  return string.sub(info, 1, a - 1), string.sub(info, a + 1, b - 1), string.sub(info, b + 1)
end

-- the run time a task has in the index: its score, or the one it was leased with
local function run_time_of(id)
  local run = redis.call('ZSCORE', K_RUN_TIMES, id)
  if run then return run end
  local info = redis.call('HGET', K_LEASE_INFO, id)
  if info then return (lease_parts(info)) end
  return false
end

-- end a lease: the task is due again at its unchanged run time
local function drop_lease(id, info)
  local run = lease_parts(info)
  redis.call('ZREM', K_LEASES, id)
  redis.call('HDEL', K_LEASE_INFO, id)
  if redis.call('HEXISTS', K_TASKS, id) == 1 then redis.call('ZADD', K_RUN_TIMES, run, id) end
end

-- end every lease held by an owner in the set `owners`
local function drop_leases_of(owners)
  local infos = redis.call('HGETALL', K_LEASE_INFO)
  for i = 1, #infos, 2 do
    local _, _, owner = lease_parts(infos[i + 1])
    if owners[owner] then drop_lease(infos[i], infos[i + 1]) end
  end
end

-- run keys: '<byte length of the id>:<id>\\31<scheduled time us, 17 digits>'
local function run_task_id(member)
  local c = string.find(member, ':', 1, true)
  local n = tonumber(string.sub(member, 1, c - 1))
  return string.sub(member, c + 1, c + n), string.sub(member, c + n + 2)
end

-- run records: '<status>\\31<attempt>\\31<fired at us>\\31<on_crash>\\31<instance>\\31<details>'
-- (details: JSON written by Python, never with a raw control character; the instance is
-- whatever lies between the fourth and the last separator)
local function run_parts(rec)
  local p1 = string.find(rec, SEP, 1, true)
  local p2 = string.find(rec, SEP, p1 + 1, true)
  local p3 = string.find(rec, SEP, p2 + 1, true)
  local p4 = string.find(rec, SEP, p3 + 1, true)
  local last = p4
  while true do
    local nxt = string.find(rec, SEP, last + 1, true)
    if not nxt then break end
    last = nxt
  end
  return {
    status = string.sub(rec, 1, p1 - 1),
    attempt = string.sub(rec, p1 + 1, p2 - 1),
    fired = string.sub(rec, p2 + 1, p3 - 1),
    on_crash = string.sub(rec, p3 + 1, p4 - 1),
    instance = string.sub(rec, p4 + 1, last - 1),
    details = string.sub(rec, last + 1),
  }
end

local function run_record(r)
  return r.status .. SEP .. r.attempt .. SEP .. r.fired .. SEP .. r.on_crash .. SEP ..
    r.instance .. SEP .. r.details
end

-- one fewer run of the task counts as started
local function uncount(member)
  redis.call('HDEL', K_STARTED, member)
  local id = run_task_id(member)
  if redis.call('HINCRBY', K_STARTED_COUNTS, id, -1) <= 0 then
    redis.call('HDEL', K_STARTED_COUNTS, id)
  end
end
"""

# ARGV: n, then n x (id, record, run time or "", version).
ADD: Final = (
    _PRELUDE
    + """
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  if redis.call('HEXISTS', K_TASKS, ARGV[2 + i * 4]) == 1 then return ARGV[2 + i * 4] end
end
for i = 0, n - 1 do
  local id, nxt = ARGV[2 + i * 4], ARGV[4 + i * 4]
  redis.call('HSET', K_TASKS, id, ARGV[3 + i * 4])
  redis.call('HSET', K_VERSIONS, id, ARGV[5 + i * 4])
  if nxt ~= '' then redis.call('ZADD', K_RUN_TIMES, nxt, id) end
end
return false
"""
)

# ARGV: id, record, run time or "", expected version or "", keep schedule ("1"/"0"), the
# version to give a task stored without one.
# Returns {0} (missing), {-1, stored version or false} (conflict) or {1, new version, run time
# in the index or false}.
UPDATE: Final = (
    _PRELUDE
    + """
local id = ARGV[1]
if redis.call('HEXISTS', K_TASKS, id) == 0 then return {0} end
local stored = redis.call('HGET', K_VERSIONS, id)
if ARGV[4] ~= '' and stored ~= ARGV[4] then return {-1, stored} end
local version
if stored then
  version = redis.call('HINCRBY', K_VERSIONS, id, 1)
else
  redis.call('HSET', K_VERSIONS, id, ARGV[6])
  version = tonumber(ARGV[6])
end
redis.call('HSET', K_TASKS, id, ARGV[2])
if ARGV[5] == '1' then return {1, version, run_time_of(id)} end
redis.call('ZREM', K_LEASES, id)
redis.call('HDEL', K_LEASE_INFO, id)
if ARGV[3] == '' then
  redis.call('ZREM', K_RUN_TIMES, id)
else
  redis.call('ZADD', K_RUN_TIMES, ARGV[3], id)
end
return {1, version, false}
"""
)

# ARGV: id.
DELETE: Final = (
    _PRELUDE
    + """
local id = ARGV[1]
if redis.call('HDEL', K_TASKS, id) == 0 then return 0 end
redis.call('HDEL', K_VERSIONS, id)
redis.call('ZREM', K_RUN_TIMES, id)
redis.call('ZREM', K_LEASES, id)
redis.call('HDEL', K_LEASE_INFO, id)
return 1
"""
)

# ARGV: now, owner, limit, lease expiry, token.
# Returns a flat list of (id, run time, record, version or false) for the tasks now leased.
ACQUIRE: Final = (
    _PRELUDE
    + """
local expired = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', ARGV[1])
for _, id in ipairs(expired) do
  local info = redis.call('HGET', K_LEASE_INFO, id)
  if info then
    drop_lease(id, info)
  else
    redis.call('ZREM', K_LEASES, id)
  end
end
local due = redis.call('ZRANGEBYSCORE', K_RUN_TIMES, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[3]))
local out = {}
local suffix = '|' .. ARGV[5] .. '|' .. ARGV[2]
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  redis.call('ZREM', K_RUN_TIMES, id)
  redis.call('ZADD', K_LEASES, ARGV[4], id)
  redis.call('HSET', K_LEASE_INFO, id, score .. suffix)
  out[#out + 1] = id
  out[#out + 1] = score
  out[#out + 1] = redis.call('HGET', K_TASKS, id) or ''
  out[#out + 1] = redis.call('HGET', K_VERSIONS, id)
end
return out
"""
)

# ARGV: now. Read-only, one round trip.
# Returns {due, records, versions, leased}: the flat (id, run time) list of the scheduled tasks
# due at now, in run-time order (ties by id); their records and versions in the same order
# (false for one that vanished); and a flat (id, run time, record, version) list of the leased
# ones due (their run time is in lease_info). The records are read with HMGET in slices, which
# is several times faster than one HGET per task (unpack() is bounded by Lua's stack).
DUE: Final = (
    _PRELUDE
    + """
local due = redis.call('ZRANGEBYSCORE', K_RUN_TIMES, '-inf', ARGV[1], 'WITHSCORES')
local ids, records, versions = {}, {}, {}
for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  local got = redis.call('HMGET', K_TASKS, unpack(ids, first, last))
  for j = 1, #got do records[#records + 1] = got[j] end
  got = redis.call('HMGET', K_VERSIONS, unpack(ids, first, last))
  for j = 1, #got do versions[#versions + 1] = got[j] end
end
local leased = {}
local infos = redis.call('HGETALL', K_LEASE_INFO)
for i = 1, #infos, 2 do
  local id = infos[i]
  local at = lease_parts(infos[i + 1])
  if tonumber(at) <= tonumber(ARGV[1]) and not redis.call('ZSCORE', K_RUN_TIMES, id) then
    local data = redis.call('HGET', K_TASKS, id)
    if data then
      leased[#leased + 1] = id
      leased[#leased + 1] = at
      leased[#leased + 1] = data
      leased[#leased + 1] = redis.call('HGET', K_VERSIONS, id)
    end
  end
end
return {due, records, versions, leased}
"""
)

# Shared by RELEASE and FIRE: end the lease of `id` if `token` and `owner` still hold it, and
# store the next run time (or delete the task). True when it did.
_RELEASE_ONE = """
local function release_one(id, token, owner, nxt)
  local info = redis.call('HGET', K_LEASE_INFO, id)
  if not info then return false end
  local _, held, holder = lease_parts(info)
  if held ~= token or holder ~= owner then return false end
  redis.call('HDEL', K_LEASE_INFO, id)
  redis.call('ZREM', K_LEASES, id)
  if nxt == '' then
    redis.call('HDEL', K_TASKS, id)
    redis.call('HDEL', K_VERSIONS, id)
  else
    redis.call('ZADD', K_RUN_TIMES, nxt, id)
    redis.call('HINCRBY', K_VERSIONS, id, 1)
  end
  return true
end
"""

# ARGV: owner, n, then n x (id, token, run time or "").
RELEASE: Final = (
    _PRELUDE
    + _RELEASE_ONE
    + """
local n = tonumber(ARGV[2])
local released = {}
for i = 0, n - 1 do
  local id = ARGV[3 + i * 3]
  if release_one(id, ARGV[4 + i * 3], ARGV[1], ARGV[5 + i * 3]) then
    released[#released + 1] = id
  end
end
return released
"""
)

# ARGV: owner, lease in us, n, then n x (id, token). Returns the ids whose lease was renewed.
RENEW: Final = (
    _PRELUDE
    + """
local until_us = fmt(now_us() + tonumber(ARGV[2]))
local n = tonumber(ARGV[3])
local renewed = {}
for i = 0, n - 1 do
  local id = ARGV[4 + i * 2]
  local info = redis.call('HGET', K_LEASE_INFO, id)
  if info then
    local _, held, holder = lease_parts(info)
    if held == ARGV[5 + i * 2] and holder == ARGV[1] then
      redis.call('ZADD', K_LEASES, until_us, id)
      renewed[#renewed + 1] = id
    end
  end
end
return renewed
"""
)

# ARGV: identity, info (JSON).
REGISTER: Final = (
    _PRELUDE
    + """
redis.call('HSET', K_INSTANCES, ARGV[1], ARGV[2])
redis.call('ZADD', K_HEARTBEATS, fmt(now_us()), ARGV[1])
return 1
"""
)

# ARGV: identity.
UNREGISTER: Final = (
    _PRELUDE
    + """
redis.call('HDEL', K_INSTANCES, ARGV[1])
redis.call('ZREM', K_HEARTBEATS, ARGV[1])
drop_leases_of({[ARGV[1]] = true})
return 1
"""
)

# ARGV: identity, info (JSON), dead after (us), run retention (us) or "", purge interval (us),
# purge batch size.
# Returns the identities declared dead. Their leases end (the tasks are due again at once, at
# their unchanged run time) and their started runs are resolved: abandoned, or waiting for a
# taker (instance "") when on_crash is "rerun" and this was the first attempt.
HEARTBEAT: Final = (
    _PRELUDE
    + """
local now = now_us()
redis.call('HSET', K_INSTANCES, ARGV[1], ARGV[2])
redis.call('ZADD', K_HEARTBEATS, fmt(now), ARGV[1])
local old = redis.call('ZRANGEBYSCORE', K_HEARTBEATS, '-inf',
                       '(' .. fmt(now - tonumber(ARGV[3])))
local dead, owners = {}, {}
for _, identity in ipairs(old) do
  if identity ~= ARGV[1] then
    redis.call('ZREM', K_HEARTBEATS, identity)
    redis.call('HDEL', K_INSTANCES, identity)
    owners[identity] = true
    dead[#dead + 1] = identity
  end
end
if #dead > 0 then
  drop_leases_of(owners)
  local started = redis.call('HGETALL', K_STARTED)
  for i = 1, #started, 2 do
    local member = started[i]
    if owners[started[i + 1]] then
      local rec = redis.call('HGET', K_RUNS, member)
      if not rec then
        uncount(member)
      else
        local r = run_parts(rec)
        if r.on_crash == 'rerun' and r.attempt == '1' then
          r.instance = ''
          redis.call('HSET', K_STARTED, member, '')
          local _, at = run_task_id(member)
          redis.call('ZADD', K_RERUNS, at, member)
        else
          r.status = 'abandoned'
          uncount(member)
        end
        redis.call('HSET', K_RUNS, member, run_record(r))
      end
    end
  end
end
if ARGV[4] ~= '' then
  local last = redis.call('HGET', K_META, 'purged_at')
  if not last or now - tonumber(last) >= tonumber(ARGV[5]) then
    local batch = tonumber(ARGV[6])
    local old_runs = redis.call('ZRANGEBYSCORE', K_RUNS_BY_TIME, '-inf',
                                '(' .. fmt(now - tonumber(ARGV[4])), 'LIMIT', 0, batch)
    local removed = 0
    for _, member in ipairs(old_runs) do
      if redis.call('HEXISTS', K_STARTED, member) == 0 then
        redis.call('HDEL', K_RUNS, member)
        redis.call('ZREM', K_RUNS_BY_TIME, member)
        redis.call('ZREM', K_RUNS_BY_TASK, member)
        removed = removed + 1
      end
    end
    -- a full batch: go on at the next heartbeat
    if #old_runs < batch or removed == 0 then
      redis.call('HSET', K_META, 'purged_at', fmt(now))
    end
  end
end
return dead
"""
)

# ARGV: owner, n, then per fire: id, token, next run time or "", max_instances, on_crash, k,
# then k x (run key, scheduled time us).
# Returns a flat list of (id, codes) for the fires committed, codes holding one letter per run
# time: s(tarted), k (skipped), d(uplicate).
FIRE: Final = (
    _PRELUDE
    + _RELEASE_ONE
    + """
local owner = ARGV[1]
local n = tonumber(ARGV[2])
local now = nil
local p = 3
local out = {}
for _ = 1, n do
  local id, token, nxt = ARGV[p], ARGV[p + 1], ARGV[p + 2]
  local max_instances, on_crash, k = tonumber(ARGV[p + 3]), ARGV[p + 4], tonumber(ARGV[p + 5])
  local base = p + 6
  p = base + 2 * k
  if release_one(id, token, owner, nxt) then
    local codes = {}
    if k > 0 then
      if not now then now = fmt(now_us()) end
      local count = tonumber(redis.call('HGET', K_STARTED_COUNTS, id)) or 0
      local added = 0
      local tail = SEP .. '1' .. SEP .. now .. SEP .. on_crash .. SEP .. owner .. SEP
      for j = 0, k - 1 do
        local member = ARGV[base + 2 * j]
        if redis.call('HEXISTS', K_RUNS, member) == 1 then
          codes[#codes + 1] = 'd'
        else
          local status = 'skipped'
          if count < max_instances then
            status = 'started'
            count = count + 1
            added = added + 1
            redis.call('HSET', K_STARTED, member, owner)
            codes[#codes + 1] = 's'
          else
            codes[#codes + 1] = 'k'
          end
          redis.call('HSET', K_RUNS, member, status .. tail)
          redis.call('ZADD', K_RUNS_BY_TIME, ARGV[base + 2 * j + 1], member)
          redis.call('ZADD', K_RUNS_BY_TASK, 0, member)
        end
      end
      if added > 0 then redis.call('HINCRBY', K_STARTED_COUNTS, id, added) end
    end
    out[#out + 1] = id
    out[#out + 1] = table.concat(codes)
  end
end
return out
"""
)

# ARGV: n, then n x (run key, instance, status, details JSON).
# A record changes only while it is started by that instance.
FINISH: Final = (
    _PRELUDE
    + """
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local member, instance = ARGV[2 + i * 4], ARGV[3 + i * 4]
  local rec = redis.call('HGET', K_RUNS, member)
  if rec and string.sub(rec, 1, 8) == 'started' .. SEP then
    local r = run_parts(rec)
    if r.instance == instance then
      r.status = ARGV[4 + i * 4]
      r.details = ARGV[5 + i * 4]
      redis.call('HSET', K_RUNS, member, run_record(r))
      uncount(member)
    end
  end
end
return 1
"""
)

# ARGV: owner, limit.
# Returns a flat list of (run key, task record, version or false, run time or false) for the
# runs taken; a run whose task is gone becomes abandoned.
TAKE_RERUNS: Final = (
    _PRELUDE
    + """
local owner, limit = ARGV[1], tonumber(ARGV[2])
local now = fmt(now_us())
local out = {}
local taken = 0
while taken < limit do
  local waiting = redis.call('ZRANGE', K_RERUNS, 0, limit - taken - 1)
  if #waiting == 0 then break end
  for _, member in ipairs(waiting) do
    redis.call('ZREM', K_RERUNS, member)
    local rec = redis.call('HGET', K_RUNS, member)
    if rec then
      local r = run_parts(rec)
      if r.status == 'started' and r.instance == '' then
        local id = run_task_id(member)
        local data = redis.call('HGET', K_TASKS, id)
        if data then
          r.instance, r.attempt, r.fired = owner, '2', now
          redis.call('HSET', K_RUNS, member, run_record(r))
          redis.call('HSET', K_STARTED, member, owner)
          out[#out + 1] = member
          out[#out + 1] = data
          out[#out + 1] = redis.call('HGET', K_VERSIONS, id)
          out[#out + 1] = run_time_of(id)
          taken = taken + 1
        else
          r.status = 'abandoned'
          redis.call('HSET', K_RUNS, member, run_record(r))
          uncount(member)
        end
      end
    end
  end
end
return out
"""
)
