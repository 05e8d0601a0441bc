// The Lua scripts that keep a cluster's log in Redis. Each runs atomically, so an append,
// its id, its retention and the message that tells the other nodes are one step; the read
// scripts return one bounded page each, so no call holds Redis for long.
//
// Keys, all under the prefix `herald:` in the selected database:
//   counter            STRING  the last position assigned (INCR), never lowered
//   last               STRING  the position of the newest event, the "previous" of the next
//   reserved           ZSET    decimal publisher ids ahead of the counter (skipped by INCR)
//   ev                 HASH    for each retained event, three fields:
//                                <position>  -> its record (record.hpp)
//                                m<position> -> cmsgpack {footprint, published_ms, id, {topics}}
//                                h<position> -> the topics still retaining it (only for an
//                                               event of several topics)
//   order              ZSET    retained positions (score = member = position): the global log
//   ids                HASH    id -> position of each retained event whose id is not its
//                              position (a publisher's own); the others are found in `ev`
//   names              ZSET    topics that retain events, score 0 (paged by name, BYLEX)
//   newest             ZSET    the same topics, score = their newest position (max_topics)
//   t:<topic>          ZSET    the topic's retained positions
//   s:<topic>          HASH    bytes, dropped (newest position retention dropped), last_id
//   erased             HASH    bucket -> newest position dropped by forgotten topics
//                              (bucket: the first 3 hex digits of SHA-1(topic), 4096 of them)
//   hist               HASH    bytes, evicted_topics, evicted_bytes, erased_max
// The Pub/Sub channel (herald:events:<db>) is named by the caller: channels are not per
// database in Redis.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::store::redis {

enum class Script : std::size_t {
    // A batch of appends, each as if alone, and one Pub/Sub message with every record
    // stored (record.hpp: next_record).
    // ARGV: prefix, channel, max_events, max_bytes, max_topics, max_total_bytes, seen (the
    //       newest position the node has seen: the counter is raised to it first), then
    //       per event: published_ms, id ("" to assign), footprint_without_id, body,
    //       number of topics, topics...
    // -> one reply per event: {1, position, id} or {0} (duplicate id)
    append,
    // ARGV: prefix, channel, limits (as append), cutoff_ms, budget -> {dropped, more (0/1)}
    expire,
    // ARGV: prefix, seen -> {counter, last}: raises both to `seen` when the counter is below
    // it (Redis lost its data)
    reseed,
    // ARGV: prefix, after, upto, limit -> records of the global log in (after, upto]
    read_after,
    // ARGV: prefix, after, upto, limit, topics... ->
    //   {records, floors (one per topic), erased_max, more (0/1)}
    read_topics,
    // ARGV: prefix, start (a ZRANGEBYLEX bound), name prefix, limit ->
    //   {name, retained, bytes, last_id, name, ...}
    topics_page,
    // ARGV: prefix, id -> the position of the retained event with that id, or nil
    lookup,
    count_,
};

inline constexpr std::size_t kScriptCount = static_cast<std::size_t>(Script::count_);

// The script's source (the shared helpers, then its own body).
[[nodiscard]] std::string_view script_text(Script script);

} // namespace herald::store::redis
