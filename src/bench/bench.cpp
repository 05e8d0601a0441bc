#include "bench/bench.hpp"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <netdb.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/measure.hpp"
#include "bench/publishers.hpp"
#include "bench/shared.hpp"
#include "bench/stalled.hpp"
#include "bench/subscribers.hpp"

namespace herald::bench {

namespace {

// A process measured beside the server (--aux-pid).
struct AuxResult {
    std::string name;
    std::vector<long> pids;
    ProcSample before, after; // memory before connecting and after settling
    double cpu_s = -1;        // over the publishing window
};

struct Results {
    int connected = 0;
    int failed = 0;
    double connect_s = 0;
    std::uint64_t publishes = 0;
    std::uint64_t publish_errors = 0;
    double publish_s = 0;
    double delivery_s = 0; // from the first publish to the last event received
    Tally tally;           // merged over the processes
    Histogram publish_rtt;
    ProcSample before, after;
    double server_cpu_s = -1;
    double harness_cpu_s = 0;
    double drain_s = 0;
    ChurnResult churn;
    int stalled = 0;        // stalled subscribers opened
    int stalled_closed = 0; // of them, closed by the server by the end of the run
    std::vector<AuxResult> aux;
    std::vector<std::uint64_t> publishes_by_target; // acknowledged, per publish target
};

Address resolve(const Endpoint& e, const char* what) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(e.host.c_str(), e.port.c_str(), &hints, &res); rc != 0) {
        throw std::invalid_argument(std::string("cannot resolve the host of ") + what + " (" +
                                    e.host + ":" + e.port + "): " + ::gai_strerror(rc));
    }
    Address a;
    std::memcpy(&a.storage, res->ai_addr, res->ai_addrlen);
    a.length = res->ai_addrlen;
    ::freeaddrinfo(res);
    return a;
}

double per_second(double n, double s) {
    return s > 0 ? n / s : 0.0;
}

void print_table(const Options& o, const Plan& plan, const Results& r) {
    const Tally& t = r.tally;
    auto row = [](const char* k, const std::string& v) {
        std::printf("  %-22s %s\n", k, v.c_str());
    };
    char b[320];
    std::printf("herald bench%s%s\n", o.label.empty() ? "" : ": ", o.label.c_str());
    std::snprintf(b, sizeof b, "%d on %d topic(s), %d process(es); %d connected, %d failed",
                  o.subscribers, o.topics, o.processes, r.connected, r.failed);
    row("subscribers", b);
    if (plan.subs.size() > 1 || plan.pubs.size() > 1) {
        const char* label = "targets";
        for (std::size_t i = 0; i < plan.subs.size(); ++i) {
            row(label, "subscribe " + plan.subs[i].url + ": " +
                           std::to_string(dealt_to(o.subscribers, plan.subs.size(), i)) +
                           " subscriber(s)");
            label = "";
        }
        for (std::size_t i = 0; i < plan.pubs.size() && !o.idle; ++i) {
            row(label, "publish " + plan.pubs[i].url + ": " +
                           std::to_string(dealt_to(o.publishers, plan.pubs.size(), i)) +
                           " publisher(s), " +
                           std::to_string(
                               i < r.publishes_by_target.size() ? r.publishes_by_target[i] : 0) +
                           " ok");
        }
    }
    std::snprintf(b, sizeof b, "%.3f s (%.0f/s)", r.connect_s,
                  per_second(r.connected, r.connect_s));
    row("connect time", b);
    if (r.before.rss_kb >= 0) {
        std::snprintf(b, sizeof b, "%ld KiB -> %ld KiB", r.before.rss_kb, r.after.rss_kb);
        row("server RSS", b);
        if (r.connected > 0) {
            std::snprintf(b, sizeof b, "%.0f bytes",
                          static_cast<double>(r.after.rss_kb - r.before.rss_kb) * 1024.0 /
                              r.connected);
            row("RSS per subscriber", b);
        }
    }
    for (const auto& a : r.aux) {
        std::snprintf(b, sizeof b, "%ld KiB -> %ld KiB", a.before.rss_kb, a.after.rss_kb);
        row((a.name + " RSS").c_str(), b);
    }
    if (o.idle) {
        return;
    }
    std::string pace =
        o.rate > 0 ? "rate " + std::to_string(static_cast<long>(o.rate)) + "/s" : "unpaced";
    std::snprintf(b, sizeof b, "%d publisher(s), %s, %d-byte payload, %.2f s", o.publishers,
                  pace.c_str(), o.payload, r.publish_s);
    row("publishing", b);
    std::snprintf(b, sizeof b, "%" PRIu64 " ok, %" PRIu64 " errors, %.0f/s", r.publishes,
                  r.publish_errors, per_second(static_cast<double>(r.publishes), r.publish_s));
    row("publishes", b);
    std::snprintf(
        b, sizeof b, "%" PRIu64 " of %" PRIu64 " expected, %.0f/s, %.1f MiB/s (over %.2f s)",
        t.deliveries, t.expected, per_second(static_cast<double>(t.deliveries), r.delivery_s),
        per_second(static_cast<double>(t.bytes), r.delivery_s) / 1048576, r.delivery_s);
    row("deliveries", b);
    std::snprintf(b, sizeof b, "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
                  format_ns(t.latency.percentile(0.50)).c_str(),
                  format_ns(t.latency.percentile(0.90)).c_str(),
                  format_ns(t.latency.percentile(0.99)).c_str(),
                  format_ns(t.latency.percentile(0.999)).c_str(),
                  format_ns(t.latency.max()).c_str());
    row("latency", b);
    std::snprintf(
        b, sizeof b, "p50 %s  p99 %s  max %s", format_ns(r.publish_rtt.percentile(0.50)).c_str(),
        format_ns(r.publish_rtt.percentile(0.99)).c_str(), format_ns(r.publish_rtt.max()).c_str());
    row("publish round trip", b);
    std::snprintf(b, sizeof b, "%" PRIu64 " (in %" PRId64 " subscriber(s))", t.missing,
                  t.subscribers_missing);
    row("missing", b);
    std::snprintf(b, sizeof b, "%" PRIu64, t.duplicates);
    row("duplicates", b);
    if (t.malformed > 0 || t.stray > 0) {
        std::snprintf(b, sizeof b, "%" PRIu64 " malformed, %" PRIu64 " not acknowledged",
                      t.malformed, t.stray);
        row("unexpected events", b);
    }
    std::snprintf(b, sizeof b, "%" PRId64, t.disconnected);
    row("disconnected early", b);
    if (o.churn > 0) {
        std::snprintf(
            b, sizeof b, "%" PRIu64 " connects (%.0f/s), %" PRIu64 " failed; head p50 %s p99 %s",
            r.churn.connects, per_second(static_cast<double>(r.churn.connects), r.churn.seconds),
            r.churn.failures, format_ns(r.churn.head.percentile(0.5)).c_str(),
            format_ns(r.churn.head.percentile(0.99)).c_str());
        row("churn", b);
    }
    if (o.stalled > 0) {
        std::snprintf(b, sizeof b, "%d opened, %d closed by the server", r.stalled,
                      r.stalled_closed);
        row("stalled subscribers", b);
    }
    std::snprintf(b, sizeof b, "%.2f s", r.drain_s);
    row("drain wait", b);
    if (r.server_cpu_s >= 0) {
        std::snprintf(b, sizeof b, "server %.0f%%, harness %.0f%% (of one core, while publishing)",
                      100 * r.server_cpu_s / r.publish_s, 100 * r.harness_cpu_s / r.publish_s);
    } else {
        std::snprintf(b, sizeof b, "harness %.0f%% (of one core, while publishing)",
                      100 * r.harness_cpu_s / r.publish_s);
    }
    row("cpu", b);
    for (const auto& a : r.aux) {
        if (a.cpu_s >= 0) {
            std::snprintf(b, sizeof b, "%.0f%% (of one core, while publishing)",
                          100 * a.cpu_s / r.publish_s);
            row((a.name + " cpu").c_str(), b);
        }
    }
}

std::string json_string(const std::string& s) {
    return "\"" + json_escape(s) + "\"";
}

// ,"targets":{...},"aux":{...}: where the connections went, and the --aux-pid processes.
std::string json_extra(const Options& o, const Plan& plan, const Results& r) {
    char b[160];
    std::string out = ",\"targets\":{\"sub\":[";
    for (std::size_t i = 0; i < plan.subs.size(); ++i) {
        std::snprintf(b, sizeof b, "%s{\"url\":", i > 0 ? "," : "");
        out += b + json_string(plan.subs[i].url);
        std::snprintf(b, sizeof b, ",\"subscribers\":%d}",
                      dealt_to(o.subscribers, plan.subs.size(), i));
        out += b;
    }
    out += "],\"pub\":[";
    for (std::size_t i = 0; i < plan.pubs.size(); ++i) {
        std::snprintf(b, sizeof b, "%s{\"url\":", i > 0 ? "," : "");
        out += b + json_string(plan.pubs[i].url);
        std::snprintf(b, sizeof b, ",\"publishers\":%d,\"publishes\":%" PRIu64 "}",
                      dealt_to(o.publishers, plan.pubs.size(), i),
                      i < r.publishes_by_target.size() ? r.publishes_by_target[i] : 0);
        out += b;
    }
    out += "]},\"aux\":{";
    for (std::size_t i = 0; i < r.aux.size(); ++i) {
        const AuxResult& a = r.aux[i];
        out += (i > 0 ? "," : "") + json_string(a.name) + ":{\"pids\":[";
        for (std::size_t k = 0; k < a.pids.size(); ++k) {
            out += (k > 0 ? "," : "") + std::to_string(a.pids[k]);
        }
        const double percent = a.cpu_s >= 0 && r.publish_s > 0 ? 100 * a.cpu_s / r.publish_s : -1;
        std::snprintf(b, sizeof b,
                      "],\"cpu_s\":%.3f,\"cpu_percent\":%.1f,\"rss_before_kb\":%ld,"
                      "\"rss_after_kb\":%ld}",
                      a.cpu_s, percent, a.before.rss_kb, a.after.rss_kb);
        out += b;
    }
    return out + "}";
}

void print_json(const Options& o, const Plan& plan, const Results& r, bool clean) {
    const Tally& t = r.tally;
    double per = r.connected > 0 && r.before.rss_kb >= 0
                     ? static_cast<double>(r.after.rss_kb - r.before.rss_kb) * 1024.0 / r.connected
                     : -1;
    std::printf(
        "{\"label\":%s,\"subscribers\":%d,\"topics\":%d,\"processes\":%d,\"connected\":%d,"
        "\"failed\":%d,\"connect_s\":%.3f,\"connects_per_s\":%.1f,\"idle\":%s,"
        "\"publishers\":%d,\"rate\":%.1f,\"payload\":%d,\"publish_s\":%.3f,"
        "\"publishes\":%" PRIu64 ",\"publish_errors\":%" PRIu64 ",\"publishes_per_s\":%.1f,"
        "\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"deliveries_per_s\":%.1f,"
        "\"delivery_s\":%.3f,"
        "\"bytes_received\":%" PRIu64 ","
        "\"latency_ns\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
        ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "},"
        "\"publish_rtt_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "},"
        "\"missing\":%" PRIu64 ",\"subscribers_missing\":%" PRId64 ",\"duplicates\":%" PRIu64
        ",\"malformed\":%" PRIu64 ",\"unacknowledged\":%" PRIu64 ",\"disconnected\":%" PRId64
        ",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_subscriber\":%.1f,"
        "\"server_cpu_s\":%.3f,\"harness_cpu_s\":%.3f,"
        "\"churn\":{\"rate\":%.1f,\"connects\":%" PRIu64 ",\"failures\":%" PRIu64
        ",\"connects_per_s\":%.1f,\"head_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
        ",\"max\":%" PRIu64 "}},\"stalled\":%d,\"stalled_closed\":%d,\"clean\":%s%s}\n",
        json_string(o.label).c_str(), o.subscribers, o.topics, o.processes, r.connected, r.failed,
        r.connect_s, per_second(r.connected, r.connect_s), o.idle ? "true" : "false", o.publishers,
        o.rate, o.payload, r.publish_s, r.publishes, r.publish_errors,
        per_second(static_cast<double>(r.publishes), r.publish_s), t.deliveries, t.expected,
        per_second(static_cast<double>(t.deliveries), r.delivery_s), r.delivery_s, t.bytes,
        t.latency.percentile(0.5), t.latency.percentile(0.9), t.latency.percentile(0.99),
        t.latency.percentile(0.999), t.latency.max(), r.publish_rtt.percentile(0.5),
        r.publish_rtt.percentile(0.99), r.publish_rtt.max(), t.missing, t.subscribers_missing,
        t.duplicates, t.malformed, t.stray, t.disconnected, r.before.rss_kb, r.after.rss_kb, per,
        r.server_cpu_s, r.harness_cpu_s, o.churn, r.churn.connects, r.churn.failures,
        per_second(static_cast<double>(r.churn.connects), r.churn.seconds),
        r.churn.head.percentile(0.5), r.churn.head.percentile(0.99), r.churn.head.max(), r.stalled,
        r.stalled_closed, clean ? "true" : "false", json_extra(o, plan, r).c_str());
}

// Bits for the acknowledgement bitmaps: enough for the run at the rate asked, or for an
// unpaced run at up to 2 million publishes/s per publisher.
std::uint64_t seq_capacity(const Options& o) {
    if (o.publishers == 0) {
        return 64;
    }
    double per = o.rate > 0 ? o.rate / o.publishers * o.duration * 1.2 + 1024
                            : std::max(1.0, o.duration) * 2e6;
    return static_cast<std::uint64_t>(std::min(per, 1e10));
}

void kill_children(const std::vector<pid_t>& children) {
    for (pid_t c : children) {
        ::kill(c, SIGKILL);
        ::waitpid(c, nullptr, 0);
    }
}

// False once a subscriber process has died before its tally.
bool children_alive(const std::vector<pid_t>& children) {
    for (pid_t c : children) {
        int status = 0;
        if (::waitpid(c, &status, WNOHANG) == c) {
            return false;
        }
    }
    return true;
}

} // namespace

int run(Options o) {
    Plan plan;
    std::vector<Address> sub_addrs; // one per subscribe target
    std::vector<Address> pub_addrs; // one per publish target (none when idle)
    try {
        plan = make_plan(o);
        for (const auto& e : plan.subs) {
            sub_addrs.push_back(resolve(e, "--sub-url"));
            if (o.source_ips > 1 && sub_addrs.back().storage.ss_family != AF_INET) {
                throw std::invalid_argument("--source-ips needs an IPv4 server address");
            }
        }
        for (const auto& e : plan.pubs) {
            if (!o.idle) {
                pub_addrs.push_back(resolve(e, "--pub-url"));
            }
        }
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "herald bench: %s\n", e.what());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);

    const std::uint64_t nofile = raise_nofile();
    const int per_process = (o.subscribers + o.processes - 1) / o.processes;
    const std::uint64_t churn_fds = o.churn > 0 ? 4096 : 0;
    const std::uint64_t parent_fds = static_cast<std::uint64_t>(o.publishers) + churn_fds + 32 +
                                     static_cast<std::uint64_t>(o.stalled) +
                                     (o.processes == 1 ? static_cast<std::uint64_t>(per_process) +
                                                             static_cast<std::uint64_t>(o.threads)
                                                       : 0);
    const std::uint64_t child_fds =
        static_cast<std::uint64_t>(per_process) + static_cast<std::uint64_t>(o.threads) + 32;
    if (std::max(parent_fds, child_fds) > nofile) {
        std::fprintf(stderr,
                     "herald bench: %d subscriber(s) in %d process(es) need about %" PRIu64
                     " open files per process, but a process may open only %" PRIu64
                     " here; use more --processes (or raise the hard limit)\n",
                     o.subscribers, o.processes, std::max(parent_fds, child_fds), nofile);
        return 2;
    }
    if (o.subscribers > 28000 * o.source_ips) {
        std::fprintf(stderr,
                     "herald bench: %d subscribers exceed the ephemeral ports of %d source "
                     "address(es) (about 28,000 each); use --source-ips %d\n",
                     o.subscribers, o.source_ips, o.subscribers / 28000 + 1);
        return 2;
    }

    SharedState shared(o.topics, o.processes, o.publishers, seq_capacity(o));
    auto& control = shared.control();
    Results r;
    r.before = sample_processes(o.pids);
    if (!o.pids.empty() && r.before.rss_kb < 0) {
        std::fprintf(stderr, "herald bench: cannot read /proc/PID/status of --pid\n");
        return 2;
    }
    for (const auto& a : plan.aux) {
        AuxResult& ar = r.aux.emplace_back();
        ar.name = a.name;
        ar.pids = a.pids;
        ar.before = sample_processes(a.pids);
        if (ar.before.rss_kb < 0) {
            std::fprintf(stderr, "herald bench: cannot read /proc/PID/status of --aux-pid %s\n",
                         a.name.c_str());
            return 2;
        }
    }

    // The subscribers: in this process on threads, or in forked processes. Forking comes
    // before this process starts any thread.
    std::vector<pid_t> children;
    std::unique_ptr<SubscriberGroup> local;
    std::thread local_thread;
    auto share = [&](int k) {
        return std::pair{
            static_cast<int>(static_cast<long>(o.subscribers) * k / o.processes),
            static_cast<int>(static_cast<long>(o.subscribers) * (k + 1) / o.processes)};
    };
    const std::int64_t connect_start = now_ns();
    if (o.processes == 1) {
        local = std::make_unique<SubscriberGroup>(o, plan, shared, sub_addrs, 0, 0, o.subscribers);
        local_thread = std::thread([&] { local->run(); });
    } else {
        std::fflush(nullptr);
        const pid_t parent = ::getpid();
        for (int k = 0; k < o.processes; ++k) {
            pid_t pid = ::fork();
            if (pid < 0) {
                std::fprintf(stderr, "herald bench: fork: %s\n", std::strerror(errno));
                control.phase.store(static_cast<int>(Phase::abort));
                kill_children(children);
                return 1;
            }
            if (pid == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (::getppid() != parent) {
                    ::_exit(1);
                }
                int code = 0;
                try {
                    auto [first, last] = share(k);
                    SubscriberGroup group(o, plan, shared, sub_addrs, k, first, last);
                    group.run();
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "herald bench: subscriber process %d: %s\n", k, e.what());
                    code = 1;
                }
                std::fflush(nullptr);
                ::_exit(code);
            }
            children.push_back(pid);
        }
    }
    auto stop_subscribers = [&](Phase phase) {
        control.phase.store(static_cast<int>(phase), std::memory_order_release);
        if (local_thread.joinable()) {
            local_thread.join();
        }
    };

    // Wait for every subscriber's response head (or failure).
    bool lost_process = false;
    while (control.heads.load() + control.failed.load() < o.subscribers) {
        if (now_ns() - connect_start > static_cast<std::int64_t>(o.connect_timeout * 1e9)) {
            std::fprintf(stderr, "herald bench: gave up waiting for response heads after %.0f s\n",
                         o.connect_timeout);
            break;
        }
        if (!children.empty() && !children_alive(children)) {
            lost_process = true;
            break;
        }
        sleep_seconds(0.005);
    }
    r.connect_s = static_cast<double>(now_ns() - connect_start) / 1e9;
    r.connected = control.heads.load();
    r.failed = o.subscribers - r.connected;
    if (control.failed.load() > 0) {
        std::fprintf(stderr, "herald bench: %d subscriber(s) failed; first: %s\n",
                     control.failed.load(), shared.first_failure().c_str());
    }
    if (lost_process) {
        std::fprintf(stderr, "herald bench: a subscriber process died\n");
        stop_subscribers(Phase::abort);
        kill_children(children);
        return 1;
    }
    if (!o.pids.empty() || !plan.aux.empty()) {
        sleep_seconds(o.settle);
    }
    r.after = sample_processes(o.pids);
    for (auto& a : r.aux) {
        a.after = sample_processes(a.pids);
    }

    std::vector<std::unique_ptr<Publisher>> pubs;
    std::atomic<bool> stop_publishing{false};
    std::int64_t publish_start = 0;
    std::unique_ptr<Churn> churn;
    Stalled stalled;
    if (o.stalled > 0) {
        if (int failures = stalled.open(o.stalled, plan, sub_addrs); failures > 0) {
            std::fprintf(stderr,
                         "herald bench: %d stalled subscriber(s) could not open; first: %s\n",
                         failures, stalled.first_failure().c_str());
        }
        r.stalled = stalled.opened();
    }
    if (!o.idle) {
        for (int p = 0; p < o.publishers; ++p) {
            pubs.push_back(
                std::make_unique<Publisher>(o, plan, shared, pub_addrs, p, stop_publishing));
        }
        if (o.churn > 0) {
            churn = std::make_unique<Churn>(o, plan, sub_addrs, stop_publishing);
        }
        control.phase.store(static_cast<int>(Phase::publishing), std::memory_order_release);
        ProcSample cpu0 = sample_processes(o.pids);
        std::vector<double> aux0;
        for (const auto& a : r.aux) {
            aux0.push_back(sample_processes(a.pids).cpu_s);
        }
        double self0 = self_cpu_s();
        std::int64_t t0 = now_ns();
        for (auto& p : pubs) {
            p->start(t0);
        }
        if (churn) {
            churn->start();
        }
        sleep_until_ns(t0 + static_cast<std::int64_t>(o.duration * 1e9));
        stop_publishing.store(true);
        for (auto& p : pubs) {
            p->join();
        }
        if (churn) {
            churn->join();
            r.churn = churn->result();
            if (r.churn.failures > 0) {
                std::fprintf(stderr, "herald bench: churn: %" PRIu64 " failure(s); first: %s\n",
                             r.churn.failures, r.churn.first_failure.c_str());
            }
        }
        ProcSample cpu1 = sample_processes(o.pids);
        if (cpu0.cpu_s >= 0 && cpu1.cpu_s >= 0) {
            r.server_cpu_s = cpu1.cpu_s - cpu0.cpu_s;
        }
        for (std::size_t i = 0; i < r.aux.size(); ++i) {
            const double cpu = sample_processes(r.aux[i].pids).cpu_s;
            if (aux0[i] >= 0 && cpu >= 0) {
                r.aux[i].cpu_s = cpu - aux0[i];
            }
        }
        r.harness_cpu_s = self_cpu_s() - self0; // subscriber processes add theirs below
        std::int64_t first = INT64_MAX;
        std::int64_t last = 0;
        r.publishes_by_target.assign(plan.pubs.size(), 0);
        for (std::size_t i = 0; i < pubs.size(); ++i) {
            const auto& pr = pubs[i]->result();
            first = std::min(first, pr.first_ns);
            last = std::max(last, pr.last_ns);
            r.publishes += pr.ok;
            r.publishes_by_target[pubs[i]->target()] += pr.ok;
            r.publish_rtt.merge(pr.round_trip);
            r.publish_errors += pr.errors + pr.io_errors;
            if (!pr.first_error.empty()) {
                std::fprintf(stderr,
                             "herald bench: publisher %zu: %" PRIu64 " error(s); first: %s\n", i,
                             pr.errors + pr.io_errors, pr.first_error.c_str());
            }
            if (pr.capacity_reached) {
                std::fprintf(stderr,
                             "herald bench: publisher %zu stopped at %" PRIu64
                             " events, the most one run records\n",
                             i, shared.seq_capacity());
            }
        }
        r.publish_s = static_cast<double>(last - first) / 1e9;
        publish_start = first;

        // Wait up to --drain seconds for events still in flight.
        std::vector<std::uint64_t> per_topic(static_cast<std::size_t>(o.topics), 0);
        for (int p = 0; p < o.publishers; ++p) {
            const std::uint64_t sent = pubs[static_cast<std::size_t>(p)]->result().sent;
            for (std::uint64_t seq = 0; seq < sent; ++seq) {
                if (shared.acknowledged(p, seq)) {
                    ++per_topic[static_cast<std::size_t>(topic_of(p, seq, o.topics))];
                }
            }
        }
        std::uint64_t expected = 0;
        for (int t = 0; t < o.topics; ++t) {
            expected += per_topic[static_cast<std::size_t>(t)] *
                        static_cast<std::uint64_t>(shared.heads_of_topic(t).load());
        }
        // Events still arriving keep the wait going: it ends when all are in, or after
        // --drain seconds without a new one (at most 60 s, or 10 x --drain, in all).
        const std::int64_t drain0 = now_ns();
        const auto quiet = static_cast<std::int64_t>(o.drain * 1e9);
        const std::int64_t cap = std::max<std::int64_t>(60'000'000'000, 10 * quiet);
        std::uint64_t seen = control.unique.load();
        std::int64_t last_progress = drain0;
        while (seen < expected) {
            const std::int64_t now = now_ns();
            if (now - last_progress >= quiet || now - drain0 >= cap) {
                break;
            }
            sleep_seconds(0.01);
            if (const std::uint64_t u = control.unique.load(); u != seen) {
                seen = u;
                last_progress = now_ns();
            }
        }
        r.drain_s = static_cast<double>(now_ns() - drain0) / 1e9;
    }
    r.stalled_closed = stalled.closed_by_server();

    // The tally: every subscriber process counts its own and reports through shared memory.
    stop_subscribers(Phase::tally);
    bool tallied = true;
    for (std::size_t k = 0; k < children.size(); ++k) {
        int status = 0;
        ::waitpid(children[k], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            tallied = false;
        }
    }
    for (int k = 0; k < o.processes; ++k) {
        Tally& t = shared.tally(k);
        if (t.done.load(std::memory_order_acquire) == 0) {
            tallied = false;
            continue;
        }
        r.tally.deliveries += t.deliveries;
        r.tally.bytes += t.bytes;
        r.tally.expected += t.expected;
        r.tally.missing += t.missing;
        r.tally.duplicates += t.duplicates;
        r.tally.malformed += t.malformed;
        r.tally.stray += t.stray;
        r.tally.subscribers_missing += t.subscribers_missing;
        r.tally.disconnected += t.disconnected;
        r.tally.latency.merge(t.latency);
        r.tally.last_delivery_ns = std::max(r.tally.last_delivery_ns, t.last_delivery_ns);
        r.harness_cpu_s += t.cpu_s;
    }
    if (!tallied) {
        std::fprintf(stderr, "herald bench: a subscriber process did not report its tally\n");
    }

    // Deliveries per second are over the time they took: publishing, and the drain after
    // it when events were still arriving (a server that buffers is not credited for it).
    if (publish_start > 0 && r.tally.last_delivery_ns > publish_start) {
        r.delivery_s = std::max(
            r.publish_s, static_cast<double>(r.tally.last_delivery_ns - publish_start) / 1e9);
    } else {
        r.delivery_s = r.publish_s;
    }
    const Tally& t = r.tally;
    const bool clean = tallied && r.failed == 0 && t.disconnected == 0 && r.publish_errors == 0 &&
                       t.missing == 0 && t.duplicates == 0 && t.malformed == 0 && t.stray == 0 &&
                       r.churn.failures == 0;
    print_table(o, plan, r);
    if (o.json) {
        print_json(o, plan, r, clean);
    }
    std::fflush(stdout);
    return clean ? 0 : 1;
}

} // namespace herald::bench
