// Prometheus text format 0.0.4: HELP and TYPE lines, then the samples.
#include "ops/metrics.hpp"

#include <fmt/format.h>

namespace herald::ops {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename T> void sample(std::string& out, std::string_view name, T value) {
    out += fmt::format("{} {}\n", name, value);
}

} // namespace

std::uint64_t sum(const std::vector<const net::WorkerStats*>& workers,
                  const net::WorkerStats::Counter net::WorkerStats::*field) {
    std::uint64_t total = 0;
    for (const auto* w : workers) {
        total += (w->*field).load(std::memory_order_relaxed);
    }
    return total;
}

std::string render_metrics(const hub::Hub& hub,
                           const std::vector<const net::WorkerStats*>& workers) {
    std::string out;
    out.reserve(4096);
    using S = net::WorkerStats;

    family(out, "herald_connections", "gauge", "Open client connections.");
    sample(out, "herald_connections", sum(workers, &S::connections_open));
    family(out, "herald_connections_total", "counter", "Client connections accepted.");
    sample(out, "herald_connections_total", sum(workers, &S::connections_total));
    family(out, "herald_subscribers", "gauge", "Open event streams.");
    sample(out, "herald_subscribers", hub.subscribers());
    // Figures the hub and the store keep up to date: a scrape costs the same however many
    // topics there are.
    const log::HistoryFigures history = hub.history();
    const std::size_t followed = hub.followed_topics();
    family(out, "herald_topics", "gauge",
           "Topics with history or subscribers: herald_history_topics plus "
           "herald_followed_topics (a topic with both counts in each).");
    sample(out, "herald_topics", history.topics + followed);
    family(out, "herald_followed_topics", "gauge", "Topics that some subscriber names.");
    sample(out, "herald_followed_topics", followed);
    family(out, "herald_history_topics", "gauge",
           "Topics that retain events (at most history.max_topics).");
    sample(out, "herald_history_topics", history.topics);
    family(out, "herald_history_bytes", "gauge",
           "Bytes of the events retained, all topics together, an event once per topic "
           "(at most history.max_total_bytes).");
    sample(out, "herald_history_bytes", history.bytes);
    family(out, "herald_history_evictions_total", "counter",
           "Events dropped from a topic's history (once per topic) to keep a hub-wide bound: "
           "max_topics (the topic whose newest event was the oldest, whole), max_total_bytes "
           "(the oldest events first).");
    out += fmt::format("herald_history_evictions_total{{reason=\"max_topics\"}} {}\n"
                       "herald_history_evictions_total{{reason=\"max_total_bytes\"}} {}\n",
                       history.evicted_max_topics, history.evicted_max_total_bytes);
    family(out, "herald_events_published_total", "counter",
           "Events appended to the log (not the hub's own $sys events).");
    sample(out, "herald_events_published_total", hub.published());
    family(out, "herald_events_delivered_total", "counter",
           "Live events queued to subscribers (one per subscriber and event; not the hub's "
           "own $sys events).");
    sample(out, "herald_events_delivered_total", hub.delivered());
    family(out, "herald_events_replayed_total", "counter",
           "Events replayed from history to resuming subscribers.");
    sample(out, "herald_events_replayed_total", hub.replayed());
    family(out, "herald_bytes_out_total", "counter", "Bytes written to clients.");
    sample(out, "herald_bytes_out_total", sum(workers, &S::bytes_out));
    const std::uint64_t over_bound = sum(workers, &S::slow_disconnects);
    const std::uint64_t stalled = sum(workers, &S::stalled_disconnects);
    const std::uint64_t overload = sum(workers, &S::overload_disconnects);
    family(out, "herald_slow_consumer_disconnects_total", "counter",
           "Subscribers disconnected for falling too far behind, for any of the reasons below.");
    sample(out, "herald_slow_consumer_disconnects_total", over_bound + stalled + overload);
    family(out, "herald_slow_consumer_disconnects_by_reason_total", "counter",
           "Subscribers disconnected for falling behind: over_bound (more unsent bytes than "
           "server.slow_client_bytes), stalled (no write progress for "
           "server.write_timeout_seconds), overload (furthest behind while all streams "
           "together held more than server.max_queued_bytes).");
    out +=
        fmt::format("herald_slow_consumer_disconnects_by_reason_total{{reason=\"over_bound\"}} {}\n"
                    "herald_slow_consumer_disconnects_by_reason_total{{reason=\"stalled\"}} {}\n"
                    "herald_slow_consumer_disconnects_by_reason_total{{reason=\"overload\"}} {}\n",
                    over_bound, stalled, overload);
    family(out, "herald_publish_held_total", "counter",
           "Publishes that waited because more than half of their topic's subscribers were "
           "reading but far behind.");
    sample(out, "herald_publish_held_total", sum(workers, &S::publish_holds));
    family(out, "herald_queued_bytes", "gauge",
           "Bytes queued to subscribers and not yet written, all streams together.");
    sample(out, "herald_queued_bytes", sum(workers, &S::queued_bytes));

    if (auto store = hub.store_figures()) {
        family(out, "herald_store_transactions_total", "counter",
               "Store transactions committed (each holds one or more events: group commit).");
        sample(out, "herald_store_transactions_total", store->transactions);
        family(out, "herald_store_events_written_total", "counter",
               "Events written in committed store transactions.");
        sample(out, "herald_store_events_written_total", store->events_written);
        family(out, "herald_store_failed_transactions_total", "counter",
               "Store transactions rolled back; their publishes got 503.");
        sample(out, "herald_store_failed_transactions_total", store->failed_transactions);
        family(out, "herald_store_commit_seconds_total", "counter",
               "Time the store spent writing and committing transactions.");
        sample(out, "herald_store_commit_seconds_total", store->commit_seconds);
        family(out, "herald_store_replays_total", "counter",
               "Replays by where they were read: memory (recent events) or disk.");
        out += fmt::format("herald_store_replays_total{{source=\"memory\"}} {}\n",
                           store->memory_replays);
        out +=
            fmt::format("herald_store_replays_total{{source=\"disk\"}} {}\n", store->disk_replays);
    }

    family(out, "herald_requests_rejected_total", "counter", "Requests refused, by reason.");
    for (std::size_t i = 0; i < static_cast<std::size_t>(net::Reject::count_); ++i) {
        std::uint64_t total = 0;
        for (const auto* w : workers) {
            total += w->rejected[i].load(std::memory_order_relaxed);
        }
        out += fmt::format("herald_requests_rejected_total{{reason=\"{}\"}} {}\n",
                           net::reject_name(static_cast<net::Reject>(i)), total);
    }

    family(out, "herald_publish_duration_seconds", "histogram",
           "Time from a parsed publish request to its answer (for sqlite, once durable).");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= net::kLatencyBuckets.size(); ++i) {
        for (const auto* w : workers) {
            cumulative += w->publish_buckets[i].load(std::memory_order_relaxed);
        }
        const std::string le =
            i < net::kLatencyBuckets.size() ? fmt::format("{}", net::kLatencyBuckets[i]) : "+Inf";
        out +=
            fmt::format("herald_publish_duration_seconds_bucket{{le=\"{}\"}} {}\n", le, cumulative);
    }
    out += fmt::format("herald_publish_duration_seconds_sum {}\n",
                       static_cast<double>(sum(workers, &S::publish_ns_sum)) / 1e9);
    out +=
        fmt::format("herald_publish_duration_seconds_count {}\n", sum(workers, &S::publish_count));
    return out;
}

} // namespace herald::ops
