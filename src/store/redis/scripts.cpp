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
constexpr std::string_view kRetention = R"lua(
local max_events, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_topics, max_total = tonumber(ARGV[5]), tonumber(ARGV[6])

local function raise(key, field, pos)
  if pos > num(redis.call('HGET', key, field)) then
    redis.call('HSET', key, field, S(pos))
  end
end

local function raise_erased(t, pos)
  raise(p .. 'erased', bucket(t), pos)
  raise(p .. 'hist', 'erased_max', pos)
end

local function meta_of(spos)
  local m = redis.call('HGET', p .. 'meta', spos)
  if not m then return nil end
  return cmsgpack.unpack(m)
end

local function retains(t) return redis.call('EXISTS', p .. 't:' .. t) == 1 end

-- A topic that retains nothing is forgotten; what it dropped stays in its bucket's floor.
local function forget(t)
  local sk = p .. 's:' .. t
  raise_erased(t, num(redis.call('HGET', sk, 'dropped')))
  redis.call('DEL', sk, p .. 't:' .. t)
  redis.call('ZREM', p .. 'names', t)
  redis.call('ZREM', p .. 'newest', t)
end

-- The event itself, once no topic retains it.
local function forget_event(spos, id)
  redis.call('HDEL', p .. 'ev', spos)
  redis.call('HDEL', p .. 'meta', spos)
  redis.call('HDEL', p .. 'holders', spos)
  redis.call('ZREM', p .. 'order', spos)
  if id and redis.call('HGET', p .. 'ids', id) == spos then
    redis.call('HDEL', p .. 'ids', id)
  end
end

-- Drops a topic's oldest event from its history.
local function drop_front(t)
  local popped = redis.call('ZPOPMIN', p .. 't:' .. t)
  if #popped == 0 then return end
  local spos = popped[1]
  local m = meta_of(spos)
  local fp = m and m[1] or 0
  local sk = p .. 's:' .. t
  redis.call('HINCRBY', sk, 'bytes', S(-fp))
  redis.call('HINCRBY', p .. 'hist', 'bytes', S(-fp))
  raise(sk, 'dropped', tonumber(spos))
  if redis.call('HINCRBY', p .. 'holders', spos, '-1') <= 0 then
    forget_event(spos, m and m[3])
  end
end

local function trim(t)
  local sk = p .. 's:' .. t
  local n = redis.call('ZCARD', p .. 't:' .. t)
  while n > 0 and (n > max_events or num(redis.call('HGET', sk, 'bytes')) > max_bytes) do
    drop_front(t)
    n = n - 1
  end
  if n == 0 then forget(t) end
end

-- Drops the oldest event of the global log from every topic holding it (it is the oldest
-- of each); returns how many did.
local function drop_oldest(spos)
  local m = meta_of(spos)
  local n = 0
  if m then
    for _, t in ipairs(m[4]) do
      if redis.call('ZRANGE', p .. 't:' .. t, 0, 0)[1] == spos then
        drop_front(t)
        n = n + 1
        if not retains(t) then forget(t) end
      end
    end
  end
  if redis.call('ZSCORE', p .. 'order', spos) then
    forget_event(spos, m and m[3]) -- no topic held it: the bookkeeping was off
  end
  return n
end

-- The hub-wide bounds: whole topics first (the one whose newest event is the oldest), then
-- the oldest events of the global log.
local function caps()
  local evicted_topics, evicted_bytes = 0, 0
  if max_topics > 0 then
    while redis.call('ZCARD', p .. 'newest') > max_topics do
      local t = redis.call('ZRANGE', p .. 'newest', 0, 0)[1]
      while retains(t) do
        drop_front(t)
        evicted_topics = evicted_topics + 1
      end
      forget(t)
    end
  end
  if max_total > 0 then
    while num(redis.call('HGET', p .. 'hist', 'bytes')) > max_total do
      local first = redis.call('ZRANGE', p .. 'order', 0, 0)[1]
      if not first then break end
      evicted_bytes = evicted_bytes + drop_oldest(first)
    end
  end
  if evicted_topics > 0 then
    redis.call('HINCRBY', p .. 'hist', 'evicted_topics', S(evicted_topics))
  end
  if evicted_bytes > 0 then
    redis.call('HINCRBY', p .. 'hist', 'evicted_bytes', S(evicted_bytes))
  end
end
)lua";

constexpr std::string_view kAppend = R"lua(
local channel, ms, id = ARGV[2], ARGV[7], ARGV[8]
local fp0, body = tonumber(ARGV[9]), ARGV[10]
local topics = {}
for i = 11, #ARGV do topics[#topics + 1] = ARGV[i] end

-- A publisher's id must be new among the retained events, cluster-wide.
if id ~= '' and redis.call('HEXISTS', p .. 'ids', id) == 1 then
  return {0}
end
local pos = redis.call('INCR', p .. 'counter')
if id == '' then
  -- The id is the position, unless a publisher took that decimal already.
  while redis.call('HEXISTS', p .. 'ids', S(pos)) == 1 or
        redis.call('ZSCORE', p .. 'reserved', S(pos)) do
    pos = redis.call('INCR', p .. 'counter')
  end
  id = S(pos)
elseif #id <= 15 and string.find(id, '^[1-9][0-9]*$') and tonumber(id) > pos then
  -- A decimal id ahead of the counter: the position of that number is skipped when the
  -- counter gets there (beyond 15 digits, positions will never get there).
  redis.call('ZADD', p .. 'reserved', id, id)
end
redis.call('ZREMRANGEBYSCORE', p .. 'reserved', '-inf', S(pos))

local spos = S(pos)
local prev = redis.call('GET', p .. 'last') or '0'
redis.call('SET', p .. 'last', spos)
local record = F(spos) .. F(prev) .. F(ms) .. F(id) .. body

if max_events > 0 and #topics > 0 then
  local fp = fp0 + 2 * #id
  redis.call('HSET', p .. 'ev', spos, record)
  redis.call('HSET', p .. 'meta', spos, cmsgpack.pack({fp, tonumber(ms), id, topics}))
  redis.call('HSET', p .. 'holders', spos, S(#topics))
  redis.call('ZADD', p .. 'order', spos, spos)
  redis.call('HSET', p .. 'ids', id, spos)
  for _, t in ipairs(topics) do
    local sk = p .. 's:' .. t
    if redis.call('EXISTS', sk) == 0 then
      -- What a forgotten topic of this name dropped still counts.
      local floor = redis.call('HGET', p .. 'erased', bucket(t)) or '0'
      redis.call('HSET', sk, 'bytes', '0', 'dropped', floor, 'last_id', '')
      redis.call('ZADD', p .. 'names', '0', t)
    end
    redis.call('ZADD', p .. 't:' .. t, spos, spos)
    redis.call('HINCRBY', sk, 'bytes', S(fp))
    redis.call('HSET', sk, 'last_id', id)
    redis.call('ZADD', p .. 'newest', spos, t)
    redis.call('HINCRBY', p .. 'hist', 'bytes', S(fp))
  end
  for _, t in ipairs(topics) do
    trim(t)
  end
  caps()
else
  -- No history: only what a replay must know (events went by).
  for _, t in ipairs(topics) do raise_erased(t, pos) end
end

redis.call('PUBLISH', channel, record)
return {1, spos, id}
)lua";

constexpr std::string_view kExpire = R"lua(
local cutoff, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local n = 0
while n < budget do
  local first = redis.call('ZRANGE', p .. 'order', 0, 0)[1]
  if not first then return {n, 0} end
  local m = meta_of(first)
  if m and m[2] >= cutoff then return {n, 0} end
  drop_oldest(first)
  n = n + 1
end
return {n, 1}
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
return redis.call('HMGET', p .. 'ev', unpack(ps))
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
for i = 1, n do keys[i] = S(list[i]) end
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
        with({kHelpers, kRetention, kAppend}),
        with({kHelpers, kRetention, kExpire}),
        with({kHelpers, kReseed}),
        with({kHelpers, kReadAfter}),
        with({kHelpers, kReadTopics}),
        with({kHelpers, kTopicsPage}),
    };
}

} // namespace

std::string_view script_text(Script script) {
    static const std::array<std::string, kScriptCount> texts = build();
    return texts[static_cast<std::size_t>(script)];
}

} // namespace herald::store::redis
