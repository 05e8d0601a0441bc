// The subscribers of a `herald bench` run: non-blocking connections on epoll threads, each
// parsing its SSE stream and keeping one bit per (publisher, seq) received, so that
// missing and duplicate events are exact counts. A SubscriberGroup is the part one process
// holds; with --processes N there are N of them, each in its own forked process.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include "bench/options.hpp"
#include "bench/shared.hpp"

namespace herald::bench {

class SubscriberThread;

// A resolved server address.
struct Address {
    sockaddr_storage storage{};
    socklen_t length = 0;
};

// The GET that subscribes to `topic` through `target`.
std::string subscribe_request(const Plan& plan, const Endpoint& target, std::string_view topic);

// Bind `fd` to 127.0.0.(1 + index % ips) when ips > 1 (more than one address's worth of
// ephemeral ports); false with errno set when the bind fails.
bool bind_source(int fd, const Address& to, int ips, int index);

class SubscriberGroup {
public:
    // Subscribers [first, last) of the run; subscriber i follows topic i % K through the
    // subscribe target plan.sub_target(i), at addrs[plan.sub_target(i)] (one address per
    // target; the vector outlives the group).
    SubscriberGroup(const Options& o, const Plan& plan, SharedState& shared,
                    const std::vector<Address>& addrs, int process, int first, int last);
    ~SubscriberGroup();
    SubscriberGroup(const SubscriberGroup&) = delete;
    SubscriberGroup& operator=(const SubscriberGroup&) = delete;

    // Connects everyone, then waits for the tally phase, counts and writes this process's
    // Tally (done = 1). Returns when that is written or the run is aborted.
    void run();

private:
    const Options& o_;
    SharedState& shared_;
    int process_;
    std::vector<std::unique_ptr<SubscriberThread>> threads_;
};

} // namespace herald::bench
