#include "bench/measure.hpp"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>

#include <sys/resource.h>
#include <unistd.h>

namespace herald::bench {

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_ns(std::int64_t t) {
    timespec ts{};
    ts.tv_sec = t / 1'000'000'000;
    ts.tv_nsec = t % 1'000'000'000;
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

void sleep_seconds(double s) {
    sleep_until_ns(now_ns() + static_cast<std::int64_t>(s * 1e9));
}

void Histogram::merge(const Histogram& other) {
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        buckets_[i] += other.buckets_[i];
    }
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::upper(std::size_t i) {
    if (i < (1U << kSubBits)) {
        return i;
    }
    std::size_t e = i / (1U << kSubBits) + kSubBits - 1;
    std::uint64_t sub = i % (1U << kSubBits);
    return (((1ULL << kSubBits) + sub + 1) << (e - kSubBits)) - 1;
}

std::uint64_t Histogram::percentile(double q) const {
    if (count_ == 0) {
        return 0;
    }
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::max<std::uint64_t>(rank, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) {
            return std::min(upper(i), max_);
        }
    }
    return max_;
}

namespace {

ProcSample sample_one(long pid) {
    ProcSample s;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            s.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
        }
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // The fields after the ")" closing the command name; utime and stime are 14 and 15.
    auto close = all.rfind(')');
    if (close == std::string::npos) {
        return s;
    }
    std::size_t i = close + 2;
    for (int field = 3; field < 14 && i < all.size(); ++field) {
        i = all.find(' ', i);
        i = i == std::string::npos ? all.size() : i + 1;
    }
    char* end = nullptr;
    double utime = std::strtod(all.c_str() + std::min(i, all.size()), &end);
    double stime = std::strtod(end, nullptr);
    s.cpu_s = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    return s;
}

} // namespace

ProcSample sample_processes(const std::vector<long>& pids) {
    ProcSample sum;
    for (long pid : pids) {
        ProcSample s = sample_one(pid);
        if (s.rss_kb < 0) {
            return {};
        }
        sum.rss_kb = std::max(sum.rss_kb, 0L) + s.rss_kb;
        sum.cpu_s = std::max(sum.cpu_s, 0.0) + s.cpu_s;
    }
    return sum;
}

double self_cpu_s() {
    auto seconds = [](const rusage& ru) {
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    };
    rusage self{};
    rusage children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    return seconds(self) + seconds(children);
}

std::uint64_t raise_nofile() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 1024;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit want = lim;
        want.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
            lim = want;
        }
    }
    return lim.rlim_cur;
}

std::string format_ns(std::uint64_t ns) {
    char b[32];
    // Each unit up to where its one decimal would round to 10000.0.
    if (ns < 10'000) {
        std::snprintf(b, sizeof b, "%" PRIu64 " ns", ns);
    } else if (ns < 9'999'950) {
        std::snprintf(b, sizeof b, "%.1f us", static_cast<double>(ns) / 1e3);
    } else if (ns < 9'999'950'000ULL) {
        std::snprintf(b, sizeof b, "%.1f ms", static_cast<double>(ns) / 1e6);
    } else {
        std::snprintf(b, sizeof b, "%.2f s", static_cast<double>(ns) / 1e9);
    }
    return b;
}

} // namespace herald::bench
