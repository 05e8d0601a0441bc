// The scripts' Lua text. Positions travel as decimal strings and are formatted with %d:
// Lua 5.1 numbers are doubles (exact up to 2^53) and tostring() would print large ones in
// exponent form. Retention mirrors MemoryStore step for step (insert into every topic, trim
// each topic, then max_topics, then max_total_bytes), so both stores keep the same events.
#include "store/redis/scripts.hpp"

#include <array>
#include <string>

namespace herald::store::redis {

namespace {

constexpr std::string_view kHelpers = R"lua(
local p = ARGV[1]
local function S(n) return string.format('%d', n) end
local function F(s) return S(#s) .. ':' .. s end
local function num(v) return tonumber(v or '0') or 0 end
local function bucket(t) return S(tonumber(string.sub(redis.sha1hex(t), 1, 3), 16)) end
)lua";

// Retention, for the scripts that write: ARGV[3..6] are the bounds.
//
// What a script touches is read once and kept in Lua: the history's byte total, the number
// of topics, each topic's `s:` hash and size. Additions to the sorted sets (`order`, each
// `t:`, `newest`) and removals from `order` wait in Lua too, and save() writes all of it
// with one call per key before the script returns; a bound that must read a set in order
// (max_topics, max_total_bytes) writes the pending changes first. So the calls per event
// are those that store or drop the event itself.
constexpr std::string_view kRetention = R"lua(
local max_events, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_topics, max_total = tonumber(ARGV[5]), tonumber(ARGV[6])

local total_bytes = num(redis.call('HGET', p .. 'hist', 'bytes'))
local saved_total = total_bytes
local ntopics = redis.call('ZCARD', p .. 'newest')
-- topic -> false (no such topic) or {bytes, dropped, last_id, dirty,
--   stored (members in t:<topic>), pend (positions added by this script, oldest first),
--   ph (the first of them not dropped yet), newest (a score for `newest` not written yet),
--   listed (whether `newest` has the topic)}
local state = {}
local added = {}   -- positions to add to the global log, oldest first
local pending = {} -- the same, as a set (position -> true)
local unadded = {} -- those of them dropped again before they were added
local removed = {} -- positions to remove from `order`
local defer = true -- expire() removes at once: it reads `order` after each drop

-- ZADD or ZREM with many arguments, in slices that Lua's unpack() allows.
local function many(cmd, key, args)
  for k = 1, #args, 4000 do
    redis.call(cmd, key, unpack(args, k, math.min(k + 3999, #args)))
  end
end

local function raise(key, field, pos)
  if pos > num(redis.call('HGET', key, field)) then
    redis.call('HSET', key, field, S(pos))
  end
end

local function raise_erased(t, pos)
  raise(p .. 'erased', bucket(t), pos)
  raise(p .. 'hist', 'erased_max', pos)
end

local function topic(t)
  local s = state[t]
  if s == nil then
    local h = redis.call('HMGET', p .. 's:' .. t, 'bytes', 'dropped', 'last_id')
    local stored = redis.call('ZCARD', p .. 't:' .. t)
    if h[1] or stored > 0 then
      s = {bytes = num(h[1]), dropped = num(h[2]), last_id = h[3] or '', dirty = false,
           stored = stored, pend = {}, ph = 1, listed = true}
    else
      s = false
    end
    state[t] = s
  end
  return s
end

local function retained(s) return s.stored + #s.pend - s.ph + 1 end

local function flush_newest()
  local args = {}
  for t, s in pairs(state) do
    if s and s.newest then
      args[#args + 1] = s.newest
      args[#args + 1] = t
      s.newest, s.listed = nil, true
    end
  end
  many('ZADD', p .. 'newest', args)
end

local function flush_order()
  local args = {}
  for _, spos in ipairs(added) do
    if not unadded[spos] then
      args[#args + 1] = spos
      args[#args + 1] = spos
    end
  end
  many('ZADD', p .. 'order', args)
  many('ZREM', p .. 'order', removed)
  added, pending, unadded, removed = {}, {}, {}, {}
end

local function save()
  flush_order()
  flush_newest()
  for t, s in pairs(state) do
    if s and s.ph <= #s.pend then
      local args = {}
      for k = s.ph, #s.pend do
        args[#args + 1] = s.pend[k]
        args[#args + 1] = s.pend[k]
      end
      many('ZADD', p .. 't:' .. t, args)
      s.stored, s.pend, s.ph = s.stored + #s.pend - s.ph + 1, {}, 1
    end
    if s and s.dirty then
      redis.call('HSET', p .. 's:' .. t, 'bytes', S(s.bytes), 'dropped', S(s.dropped),
                 'last_id', s.last_id)
      s.dirty = false
    end
  end
  if total_bytes ~= saved_total then
    redis.call('HSET', p .. 'hist', 'bytes', S(total_bytes))
    saved_total = total_bytes
  end
end

local function meta_of(spos)
  local m = redis.call('HGET', p .. 'ev', 'm' .. spos)
  if not m then return nil end
  return cmsgpack.unpack(m)
end

local function retains(t)
  local s = topic(t)
  return s and retained(s) > 0
end

-- The oldest position a topic retains.
local function front(t)
  local s = topic(t)
  if not s then return nil end
  if s.stored > 0 then return redis.call('ZRANGE', p .. 't:' .. t, 0, 0)[1] end
  return s.pend[s.ph]
end

-- A topic that retains nothing is forgotten; what it dropped stays in its bucket's floor.
local function forget(t)
  local s = topic(t)
  if s then raise_erased(t, s.dropped) end
  redis.call('DEL', p .. 's:' .. t, p .. 't:' .. t)
  redis.call('ZREM', p .. 'names', t)
  if s and not s.listed then
    ntopics = ntopics - 1 -- counted when it was made; `newest` never had it
  elseif redis.call('ZREM', p .. 'newest', t) == 1 then
    ntopics = ntopics - 1
  end
  state[t] = false
end

-- The event itself, once no topic retains it. `ids` has an id only when it is not the
-- event's position.
local function forget_event(spos, id)
  redis.call('HDEL', p .. 'ev', spos, 'b' .. spos, 'm' .. spos, 'h' .. spos)
  if not defer then
    redis.call('ZREM', p .. 'order', spos)
  elseif pending[spos] then
    unadded[spos] = true
  else
    removed[#removed + 1] = spos
  end
  if id and id ~= spos then redis.call('HDEL', p .. 'ids', id) end
end

-- Drops a topic's oldest event from its history; true when no topic retains it now.
local function drop_front(t)
  local s = topic(t)
  if not s then return false end
  local spos
  if s.stored > 0 then
    local popped = redis.call('ZPOPMIN', p .. 't:' .. t)
    spos = popped[1]
    s.stored = #popped > 0 and s.stored - 1 or 0
  end
  if not spos then
    spos = s.pend[s.ph]
    if not spos then return false end
    s.ph = s.ph + 1
  end
  local m = meta_of(spos)
  local fp = m and m[1] or 0
  s.bytes, s.dirty = s.bytes - fp, true
  s.dropped = math.max(s.dropped, tonumber(spos))
  total_bytes = total_bytes - fp
  -- An event of one topic has no holder count: dropping it from that topic forgets it.
  if m and #m[4] > 1 and redis.call('HINCRBY', p .. 'ev', 'h' .. spos, '-1') > 0 then
    return false
  end
  forget_event(spos, m and m[3])
  return true
end

local function trim(t)
  local s = topic(t)
  if not s then return end
  local n = retained(s)
  while n > 0 and (n > max_events or s.bytes > max_bytes) do
    drop_front(t)
    n = retained(s)
  end
  if n == 0 then forget(t) end
end

-- Drops the oldest event of the global log from every topic holding it (it is the oldest
-- of each); returns how many did.
local function drop_oldest(spos)
  local m = meta_of(spos)
  local n, gone = 0, false
  if m then
    for _, t in ipairs(m[4]) do
      if front(t) == spos then
        gone = drop_front(t)
        n = n + 1
        if not retains(t) then forget(t) end
      end
    end
  end
  if not gone then
    -- No topic held it (the bookkeeping was off): forget it all the same.
    local id = m and m[3]
    if id and redis.call('HGET', p .. 'ids', id) ~= spos then id = nil end
    forget_event(spos, id)
  end
  return n
end

-- The hub-wide bounds: whole topics first (the one whose newest event is the oldest), then
-- the oldest events of the global log.
local function caps()
  local evicted_topics, evicted_bytes = 0, 0
  local newest_dropped = 0 -- the newest position these bounds dropped, for the nodes' caches
  if max_topics > 0 and ntopics > max_topics then
    flush_newest()
    while ntopics > max_topics do
      local oldest = redis.call('ZRANGE', p .. 'newest', 0, 0, 'WITHSCORES')
      local t = oldest[1]
      if not t then break end
      newest_dropped = math.max(newest_dropped, tonumber(oldest[2]))
      while retains(t) do
        drop_front(t)
        evicted_topics = evicted_topics + 1
      end
      forget(t)
    end
  end
  if max_total > 0 then
    while total_bytes > max_total do
      flush_order()
      local first = redis.call('ZRANGE', p .. 'order', 0, 0)[1]
      if not first then break end
      newest_dropped = math.max(newest_dropped, tonumber(first))
      evicted_bytes = evicted_bytes + drop_oldest(first)
    end
  end
  if evicted_topics > 0 then
    redis.call('HINCRBY', p .. 'hist', 'evicted_topics', S(evicted_topics))
  end
  if evicted_bytes > 0 then
    redis.call('HINCRBY', p .. 'hist', 'evicted_bytes', S(evicted_bytes))
  end
  return newest_dropped
end
)lua";

// Whether an id is taken by a retained event: a publisher's in `ids`, a position (an id
// the counter gave) by the event's own meta.
constexpr std::string_view kTaken = R"lua(
local function taken(id)
  local spos = redis.call('HGET', p .. 'ids', id)
  if spos then return spos end
  if #id <= 15 and string.find(id, '^[1-9][0-9]*$') then
    local m = redis.call('HGET', p .. 'ev', 'm' .. id)
    if m and cmsgpack.unpack(m)[3] == id then return id end
  end
  return nil
end
)lua";

// A batch of appends, in order, as if each were its own script: a duplicate id refuses that
// event only. One message carries every event stored.
constexpr std::string_view kAppend = R"lua(
local channel, seen = ARGV[2], tonumber(ARGV[7])
local cl = redis.call('MGET', p .. 'counter', p .. 'last')
local counter, last = num(cl[1]), num(cl[2])
local last0 = last
-- The counter never goes below a position the publishing node has seen: Redis may have
-- lost its data (a restart without persistence, a FLUSHALL) while the node stayed
-- connected, and an id must never be given twice.
if counter < seen then counter = seen end
if last < seen then last = seen end
local counter0 = counter
local any_reserved = redis.call('EXISTS', p .. 'reserved') == 1
local replies, message = {}, {}

local i = 8
while i <= #ARGV do
  local ms, id, fp0, body = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local topics = {}
  for k = 1, tonumber(ARGV[i + 4]) do topics[k] = ARGV[i + 4 + k] end
  i = i + 5 + #topics

  -- A publisher's id must be new among the retained events, cluster-wide.
  if id ~= '' and taken(id) then
    replies[#replies + 1] = {0}
  else
    counter = counter + 1
    if id == '' then
      -- The id is the position, unless a publisher took that decimal already (it is then
      -- in `reserved`: a decimal id behind the counter is never a position again).
      while any_reserved and redis.call('ZSCORE', p .. 'reserved', S(counter)) do
        counter = counter + 1
      end
      id = S(counter)
    elseif #id <= 15 and string.find(id, '^[1-9][0-9]*$') and tonumber(id) > counter then
      -- A decimal id ahead of the counter: the position of that number is skipped when the
      -- counter gets there (beyond 15 digits, positions will never get there).
      redis.call('ZADD', p .. 'reserved', id, id)
      any_reserved = true
    end
    local pos, spos, prev = counter, S(counter), S(last)
    last = counter
    -- Stored with no hub-wide drop noted (`capped` 0); the message says what this append's
    -- hub-wide bounds dropped, so that every node's cache drops it too, in order.
    local head = F(spos) .. F(prev) .. F('0') .. F(ms) .. F(id)
    local capped = 0

    if max_events > 0 and #topics > 0 then
      local fp = fp0 + 2 * #id
      local meta = cmsgpack.pack({fp, tonumber(ms), id, topics})
      if #topics > 1 then
        redis.call('HSET', p .. 'ev', spos, head, 'b' .. spos, body, 'm' .. spos, meta,
                   'h' .. spos, S(#topics))
      else
        redis.call('HSET', p .. 'ev', spos, head, 'b' .. spos, body, 'm' .. spos, meta)
      end
      added[#added + 1] = spos
      pending[spos] = true
      if id ~= spos then redis.call('HSET', p .. 'ids', id, spos) end
      for _, t in ipairs(topics) do
        local s = topic(t)
        if not s then
          -- What a forgotten topic of this name dropped still counts.
          local floor = num(redis.call('HGET', p .. 'erased', bucket(t)))
          s = {bytes = 0, dropped = floor, last_id = '', stored = 0, pend = {}, ph = 1,
               listed = false}
          state[t] = s
          redis.call('ZADD', p .. 'names', '0', t)
          ntopics = ntopics + 1
        end
        s.pend[#s.pend + 1] = spos
        s.bytes, s.last_id, s.dirty, s.newest = s.bytes + fp, id, true, spos
        total_bytes = total_bytes + fp
      end
      for _, t in ipairs(topics) do
        trim(t)
      end
      capped = caps()
    else
      -- No history: only what a replay must know (events went by).
      for _, t in ipairs(topics) do raise_erased(t, pos) end
    end

    if capped > 0 then
      head = F(spos) .. F(prev) .. F(S(capped)) .. F(ms) .. F(id)
    end
    -- The body is not copied into a new string here: table.concat copies it once.
    message[#message + 1] = F(head)
    message[#message + 1] = S(#body) .. ':'
    message[#message + 1] = body
    replies[#replies + 1] = {1, spos, id}
  end
end

save()
if counter ~= counter0 or last ~= last0 or counter0 ~= num(cl[1]) then
  redis.call('MSET', p .. 'counter', S(counter), p .. 'last', S(last))
end
if any_reserved then
  redis.call('ZREMRANGEBYSCORE', p .. 'reserved', '-inf', S(counter))
end
if #message > 0 then
  redis.call('PUBLISH', channel, table.concat(message))
end
return replies
)lua";

constexpr std::string_view kExpire = R"lua(
local cutoff, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
defer = false
local n, more = 0, 1
while n < budget do
  local first = redis.call('ZRANGE', p .. 'order', 0, 0)[1]
  if not first then more = 0 break end
  local m = meta_of(first)
  if m and m[2] >= cutoff then more = 0 break end
  drop_oldest(first)
  n = n + 1
end
save()
return {n, more}
)lua";

// ARGV: prefix, id.
constexpr std::string_view kLookup = R"lua(
return taken(ARGV[2])
)lua";

constexpr std::string_view kReseed = R"lua(
local seen = tonumber(ARGV[2])
local counter = num(redis.call('GET', p .. 'counter'))
if counter < seen then
  redis.call('SET', p .. 'counter', S(seen))
  if num(redis.call('GET', p .. 'last')) < seen then
    redis.call('SET', p .. 'last', S(seen))
  end
  counter = seen
end
return {S(counter), redis.call('GET', p .. 'last') or '0'}
)lua";

constexpr std::string_view kReadAfter = R"lua(
local ps = redis.call('ZRANGEBYSCORE', p .. 'order', '(' .. ARGV[2], ARGV[3],
                      'LIMIT', '0', ARGV[4])
if #ps == 0 then return {} end
local keys = {}
for i, s in ipairs(ps) do
  keys[2 * i - 1] = s
  keys[2 * i] = 'b' .. s
end
return redis.call('HMGET', p .. 'ev', unpack(keys))
)lua";

constexpr std::string_view kReadTopics = R"lua(
local after, upto, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local seen, list = {}, {}
for i = 5, #ARGV do
  local ps = redis.call('ZRANGEBYSCORE', p .. 't:' .. ARGV[i], '(' .. after, upto,
                        'LIMIT', '0', ARGV[4])
  for _, s in ipairs(ps) do
    if not seen[s] then
      seen[s] = true
      list[#list + 1] = tonumber(s)
    end
  end
end
table.sort(list)
local n = math.min(#list, limit)
local keys = {}
for i = 1, n do
  keys[2 * i - 1] = S(list[i])
  keys[2 * i] = 'b' .. keys[2 * i - 1]
end
local records = {}
if n > 0 then records = redis.call('HMGET', p .. 'ev', unpack(keys)) end
-- Read with the records, atomically: an event missing from them shows in a floor.
local floors = {}
for i = 5, #ARGV do
  local t = ARGV[i]
  floors[#floors + 1] = redis.call('HGET', p .. 's:' .. t, 'dropped') or
                        redis.call('HGET', p .. 'erased', bucket(t)) or '0'
end
local more = 0
if #list >= limit then more = 1 end
return {records, floors, redis.call('HGET', p .. 'hist', 'erased_max') or '0', more}
)lua";

constexpr std::string_view kTopicsPage = R"lua(
local names = redis.call('ZRANGEBYLEX', p .. 'names', ARGV[2], '+', 'LIMIT', '0', ARGV[4])
local prefix = ARGV[3]
local out = {}
for _, t in ipairs(names) do
  if string.sub(t, 1, #prefix) ~= prefix then break end
  local s = redis.call('HMGET', p .. 's:' .. t, 'bytes', 'last_id')
  out[#out + 1] = t
  out[#out + 1] = S(redis.call('ZCARD', p .. 't:' .. t))
  out[#out + 1] = s[1] or '0'
  out[#out + 1] = s[2] or ''
end
return out
)lua";

std::array<std::string, kScriptCount> build() {
    auto with = [](std::initializer_list<std::string_view> parts) {
        std::string out;
        for (auto part : parts) {
            out += part;
        }
        return out;
    };
    return {
        with({kHelpers, kRetention, kTaken, kAppend}),
        with({kHelpers, kRetention, kExpire}),
        with({kHelpers, kReseed}),
        with({kHelpers, kReadAfter}),
        with({kHelpers, kReadTopics}),
        with({kHelpers, kTopicsPage}),
        with({kHelpers, kTaken, kLookup}),
    };
}

} // namespace

std::string_view script_text(Script script) {
    static const std::array<std::string, kScriptCount> texts = build();
    return texts[static_cast<std::size_t>(script)];
}

} // namespace herald::store::redis
