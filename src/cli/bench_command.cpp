#include "cli/bench_command.hpp"

namespace herald::cli {

CLI::App* add_bench_command(CLI::App& app, bench::Options& o) {
    auto* b = app.add_subcommand(
        "bench", "Load generator for any SSE server: subscribers, publishers, latency, losses");
    // A later flag wins, so scripts can append to a base command line; the lists (targets,
    // --header, --pid, --aux-pid) keep every value instead.
    b->option_defaults()->always_capture_default()->multi_option_policy(
        CLI::MultiOptionPolicy::TakeLast);
    auto group = [](CLI::Option* opt, const char* name) { return opt->group(name); };

    const char* target = "Target";
    // Target lists: every value is kept (not only the last), and a value may be a list.
    auto list = [](CLI::Option* opt) {
        return opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    };
    group(list(b->add_option("--url", o.urls,
                             "herald's base URL; several (repeat it or separate with commas) "
                             "are used round-robin: subscriber i through URL i % N, publisher "
                             "p through URL p % N")),
          target);
    group(list(b->add_option("--sub-url", o.sub_urls,
                             "Subscribe URL (GET); {topic} is the URL-encoded topic; several "
                             "are used round-robin by subscriber, in place of the --url ones "
                             "[default: URL/events?topic={topic} for each URL]")),
          target);
    group(list(b->add_option("--pub-url", o.pub_urls,
                             "Publish URL (POST); {topic} likewise; several are used "
                             "round-robin by publisher, in place of the --url ones [default: "
                             "URL/events for each URL]")),
          target);
    group(b->add_option("--pub-body", o.pub_body,
                        "POST body; {topic} {topic:form} {data} {data:form} {data:json}"),
          target);
    group(b->add_option("--pub-content-type", o.pub_content_type, "POST Content-Type"), target);
    group(b->add_option("--header", o.headers,
                        "'Name: value' sent with every request (repeatable), e.g. "
                        "'Authorization: Bearer T'")
              ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll),
          target);

    const char* subs = "Subscribers";
    group(b->add_option("--subscribers", o.subscribers, "SSE subscribers"), subs);
    group(b->add_option_function<std::string>(
              "--topic",
              [&o](const std::string& t) {
                  o.topic = t;
                  o.topic_given = true;
              },
              "Every subscriber's topic [default: bench]; with --topics K, the prefix of "
              "TOPIC0..TOPIC{K-1}"),
          subs);
    group(b->add_option("--topics", o.topics,
                        "K topics t0..tK-1; subscriber i follows topic i % K, publisher p sends "
                        "its seq s to topic (p + s) % K"),
          subs);
    group(b->add_option("--processes", o.processes,
                        "Spread the subscribers over N processes (each may open only so many "
                        "files)"),
          subs);
    group(b->add_option("--threads", o.threads, "epoll threads per subscriber process"), subs);
    group(b->add_option("--connect-window", o.connect_window,
                        "At most W connections being opened at once"),
          subs);
    group(b->add_option("--source-ips", o.source_ips,
                        "Bind subscriber sockets round-robin to 127.0.0.1..127.0.0.K (about "
                        "28,000 connections each)"),
          subs);

    const char* pubs = "Publishers";
    group(b->add_option("--publishers", o.publishers,
                        "Publisher connections, each waiting for its answer (0: --idle)"),
          pubs);
    group(b->add_option("--rate", o.rate, "Publishes per second in all; 0: as fast as possible"),
          pubs);
    group(b->add_option("--duration", o.duration, "Seconds of publishing"), pubs);
    group(b->add_option("--payload", o.payload,
                        "Bytes of data per event (at least the '<publisher>-<seq> <time_ns> ' "
                        "stamp)"),
          pubs);
    group(b->add_flag("--idle", o.idle, "Connect, measure memory, publish nothing"), pubs);
    group(b->add_option("--churn", o.churn,
                        "Also open and close this many extra subscriber connections per second "
                        "while publishing"),
          pubs);
    group(b->add_option("--stalled", o.stalled,
                        "Also open this many subscribers that never read (small receive "
                        "buffer); reported apart: how many the server closed"),
          pubs);
    group(b->add_option("--churn-hold", o.churn_hold_ms,
                        "Milliseconds each churn connection stays after its response head"),
          pubs);

    const char* measure = "Measuring";
    group(b->add_option("--pid", o.pids,
                        "The server's process ids (comma-separated): their memory is summed "
                        "before and after connecting, their CPU while publishing")
              ->delimiter(',')
              ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll),
          measure);
    group(list(b->add_option("--aux-pid", o.aux_pids,
                             "NAME=PID[,PID...]: other processes (a store, a proxy) measured "
                             "like --pid but reported apart, under NAME (repeatable)")),
          measure);
    group(b->add_option("--settle", o.settle,
                        "Seconds to wait after connecting before reading memory"),
          measure);
    group(b->add_option(
              "--drain", o.drain,
              "After publishing, wait for events in flight until S seconds pass without one"),
          measure);
    group(b->add_option("--connect-timeout", o.connect_timeout,
                        "Give up waiting for response heads after S seconds"),
          measure);
    group(b->add_option("--label", o.label, "A name copied into the JSON"), measure);
    group(b->add_flag("--json", o.json, "Print one JSON object of the results as the last line"),
          measure);

    b->footer(
        "Each event's data is '<publisher>-<seq> <publish_time_ns> <padding>'. Every subscriber\n"
        "records which (publisher, seq) it received: missing and duplicate events are exact\n"
        "counts, whichever target an event was published through. Latency is receive time\n"
        "minus publish time (CLOCK_MONOTONIC, shared by all the processes of a run). A publish\n"
        "counts when it is answered 2xx.\n"
        "Several targets: --url A --url B (or --url A,B) puts subscribers 0, 2, 4 ... and\n"
        "publishers 0, 2, 4 ... on A, the odd ones on B. A --sub-url or --pub-url list takes\n"
        "the place of the URLs derived from --url for its side only: --url A,B --sub-url S\n"
        "subscribes everyone through S and publishes through A and B. Churn and stalled\n"
        "connections take the subscribe targets in turn. A comma inside a URL is written %2C.\n"
        "Exit status: 0 when every subscriber connected and stayed, every publish was\n"
        "acknowledged and every subscriber got each event of its topic exactly once; 1\n"
        "otherwise; 2 on bad usage. See docs/benchmarks.md.");
    return b;
}

} // namespace herald::cli
