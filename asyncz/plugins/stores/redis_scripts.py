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
    "rerun_tasks",
)

_PRELUDE = """
local K_TASKS, K_RUN_TIMES, K_LEASES, K_LEASE_INFO, K_VERSIONS = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
local K_INSTANCES, K_HEARTBEATS, K_RUNS, K_RUNS_BY_TIME, K_RUNS_BY_TASK = KEYS[6], KEYS[7],
  KEYS[8], KEYS[9], KEYS[10]
local K_STARTED, K_STARTED_COUNTS, K_RERUNS, K_META = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local K_RERUN_TASKS = KEYS[15]
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

# Shared by RELEASE and FIRE: end the leases that `owner` still holds with the given tokens,
# and store the next run times ("": delete the task). Reads and writes in bulk (a few calls for
# the whole batch, not a few per task). Returns a table index -> true for the ones released.
_RELEASE_MANY = """
local function bulk(cmd, key, items)
  for first = 1, #items, 2000 do
    redis.call(cmd, key, unpack(items, first, math.min(first + 1999, #items)))
  end
end

local function hmget(key, ids)
  local out = {}
  for first = 1, #ids, 2000 do
    local got = redis.call('HMGET', key, unpack(ids, first, math.min(first + 1999, #ids)))
    for j = 1, #got do out[#out + 1] = got[j] end
  end
  return out
end

local function release_many(owner, ids, tokens, nexts)
  local ok = {}
  if #ids == 0 then return ok end
  local infos = hmget(K_LEASE_INFO, ids)
  local gone, scheduled, deleted, bumped = {}, {}, {}, {}
  for i = 1, #ids do
    local info = infos[i]
    if info then
      local _, held, holder = lease_parts(info)
      if held == tokens[i] and holder == owner then
        ok[i] = true
        gone[#gone + 1] = ids[i]
        if nexts[i] == '' then
          deleted[#deleted + 1] = ids[i]
        else
          scheduled[#scheduled + 1] = nexts[i]
          scheduled[#scheduled + 1] = ids[i]
          bumped[#bumped + 1] = ids[i]
        end
      end
    end
  end
  if #gone > 0 then
    bulk('HDEL', K_LEASE_INFO, gone)
    bulk('ZREM', K_LEASES, gone)
  end
  if #deleted > 0 then
    bulk('HDEL', K_TASKS, deleted)
    bulk('HDEL', K_VERSIONS, deleted)
  end
  if #scheduled > 0 then
    bulk('ZADD', K_RUN_TIMES, scheduled)
    local versions = hmget(K_VERSIONS, bumped)
    local changed = {}
    for i = 1, #bumped do
      if versions[i] then
        changed[#changed + 1] = bumped[i]
        changed[#changed + 1] = fmt(tonumber(versions[i]) + 1)
      end
    end
    if #changed > 0 then bulk('HSET', K_VERSIONS, changed) end
  end
  return ok
end
"""

# ARGV: owner, n, then n x (id, token, run time or "").
RELEASE: Final = (
    _PRELUDE
    + _RELEASE_MANY
    + """
local n = tonumber(ARGV[2])
local ids, tokens, nexts = {}, {}, {}
for i = 0, n - 1 do
  ids[#ids + 1] = ARGV[3 + i * 3]
  tokens[#tokens + 1] = ARGV[4 + i * 3]
  nexts[#nexts + 1] = ARGV[5 + i * 3]
end
local ok = release_many(ARGV[1], ids, tokens, nexts)
local released = {}
for i = 1, n do
  if ok[i] then released[#released + 1] = ids[i] end
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

# ARGV: owner, n, then per fire: id, token, next run time or "", and its runs:
# "<max_instances>,<on_crash>" followed by ",<scheduled us, 17 digits>" per run time (the run
# keys are made here, from the id's byte length: see the store's docstring).
# Returns one string: per fire, "-" when its lease was lost, else one letter per run time,
# s(tarted), k (skipped) or d(uplicate); the fires' parts are joined by ",". Reads and writes
# in bulk, as release_many.
FIRE: Final = (
    _PRELUDE
    + _RELEASE_MANY
    + """
local owner = ARGV[1]
local n = tonumber(ARGV[2])
local ids, tokens, nexts, maxes, crashes, firsts, lasts, scores = {}, {}, {}, {}, {}, {}, {}, {}
for f = 1, n do
  local p = f * 4 - 1
  ids[f], tokens[f], nexts[f] = ARGV[p], ARGV[p + 1], ARGV[p + 2]
  local spec = ARGV[p + 3]
  local a = string.find(spec, ',', 1, true)
  maxes[f] = tonumber(string.sub(spec, 1, a - 1))
  local b = string.find(spec, ',', a + 1, true)
  firsts[f] = #scores + 1
  if b then
    crashes[f] = string.sub(spec, a + 1, b - 1)
    while true do
      local c = string.find(spec, ',', b + 1, true)
      if not c then
        scores[#scores + 1] = string.sub(spec, b + 1)
        break
      end
      scores[#scores + 1] = string.sub(spec, b + 1, c - 1)
      b = c
    end
  else
    crashes[f] = string.sub(spec, a + 1)
  end
  lasts[f] = #scores
end
-- a run that may be rerun keeps the task's record: the fire deletes an exhausted task
local kept = {}
for f = 1, n do
  if crashes[f] == 'rerun' and lasts[f] >= firsts[f] then
    kept[f] = redis.call('HGET', K_TASKS, ids[f])
  end
end
local ok = release_many(owner, ids, tokens, nexts)
-- what the committed fires need: the started count of each task, whether each key exists
local counted, members = {}, {}
for f = 1, n do
  if ok[f] and lasts[f] >= firsts[f] then
    counted[#counted + 1] = ids[f]
    local head = #ids[f] .. ':' .. ids[f] .. SEP
    for j = firsts[f], lasts[f] do members[j] = head .. scores[j] end
  end
end
local counts = hmget(K_STARTED_COUNTS, counted)
local wanted = {}
for j = 1, #scores do
  if members[j] then wanted[#wanted + 1] = members[j] end
end
local existing = hmget(K_RUNS, wanted)
local now = #wanted > 0 and fmt(now_us()) or ''
local records, by_time, by_task, started, new_counts = {}, {}, {}, {}, {}
local seen = {}
local c, w = 0, 0
local out = {}
for f = 1, n do
  if not ok[f] then
    out[f] = '-'
  elseif lasts[f] < firsts[f] then
    out[f] = ''
  else
    local codes = {}
    c = c + 1
    local count = tonumber(counts[c]) or 0
    local before = count
    -- one fire is one submission (its run times run one after another in one slot): all of
    -- them start, or all are skipped
    local allowed = count < maxes[f]
    local tail = SEP .. '1' .. SEP .. now .. SEP .. crashes[f] .. SEP .. owner .. SEP
    for j = firsts[f], lasts[f] do
      w = w + 1
      local member = members[j]
      if existing[w] or seen[member] then
        codes[#codes + 1] = 'd'
      else
        seen[member] = true
        local status = 'skipped'
        if allowed then
          status = 'started'
          count = count + 1
          started[#started + 1] = member
          started[#started + 1] = owner
          codes[#codes + 1] = 's'
          if kept[f] then redis.call('HSET', K_RERUN_TASKS, member, kept[f]) end
        else
          codes[#codes + 1] = 'k'
        end
        local r = #records
        records[r + 1] = member
        records[r + 2] = status .. tail
        by_time[r + 1] = scores[j]
        by_time[r + 2] = member
        by_task[r + 1] = 0
        by_task[r + 2] = member
      end
    end
    if count ~= before then
      new_counts[#new_counts + 1] = ids[f]
      new_counts[#new_counts + 1] = count
    end
    out[f] = table.concat(codes)
  end
end
if #records > 0 then
  bulk('HSET', K_RUNS, records)
  bulk('ZADD', K_RUNS_BY_TIME, by_time)
  bulk('ZADD', K_RUNS_BY_TASK, by_task)
end
if #started > 0 then
  bulk('HSET', K_STARTED, started)
  bulk('HSET', K_STARTED_COUNTS, new_counts)
end
return table.concat(out, ',')
"""
)

# ARGV: n, then n x (run key, instance, status, details JSON).
# A record changes only while it is started by that instance. In bulk, as release_many.
FINISH: Final = (
    _PRELUDE
    + _RELEASE_MANY
    + """
local n = tonumber(ARGV[1])
local members = {}
for i = 1, n do members[i] = ARGV[i * 4 - 2] end
local recs = hmget(K_RUNS, members)
local records, done, drop, tasks = {}, {}, {}, {}
for i = 1, n do
  local rec = recs[i]
  if rec and string.sub(rec, 1, 8) == 'started' .. SEP and not done[members[i]] then
    local r = run_parts(rec)
    if r.instance == ARGV[i * 4 - 1] then
      local member = members[i]
      done[member] = true
      r.status = ARGV[i * 4]
      r.details = ARGV[i * 4 + 1]
      records[#records + 1] = member
      records[#records + 1] = run_record(r)
      drop[#drop + 1] = member
      local id = run_task_id(member)
      if not tasks[id] then
        tasks[id] = 0
        tasks[#tasks + 1] = id
      end
      tasks[id] = tasks[id] + 1
    end
  end
end
if #records > 0 then
  bulk('HSET', K_RUNS, records)
  bulk('HDEL', K_STARTED, drop)
  bulk('HDEL', K_RERUN_TASKS, drop)
  local counts = hmget(K_STARTED_COUNTS, tasks)
  local keep, gone = {}, {}
  for i = 1, #tasks do
    local left = (tonumber(counts[i]) or 0) - tasks[tasks[i]]
    if left > 0 then
      keep[#keep + 1] = tasks[i]
      keep[#keep + 1] = left
    else
      gone[#gone + 1] = tasks[i]
    end
  end
  if #keep > 0 then bulk('HSET', K_STARTED_COUNTS, keep) end
  if #gone > 0 then bulk('HDEL', K_STARTED_COUNTS, gone) end
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
        if not data then
          -- an exhausted one-off task was deleted by its fire: its record was kept for this
          data = redis.call('HGET', K_RERUN_TASKS, member)
        end
        redis.call('HDEL', K_RERUN_TASKS, member)
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
