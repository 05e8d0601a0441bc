// A randomized property test of access control where it meets the hub: random tokens and
// grants, random subscriptions (exact, "*", templates, none) checked and scoped by
// authorize(), random public, private and system events, live and replayed. Each
// subscriber gets exactly what an independent model says it may read and follows, and the
// model's refusals are exactly authorize()'s. Seeded: HERALD_PROPERTY_SEED repeats a run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "auth/authenticator.hpp"
#include "http/access.hpp"
#include "hub/hub.hpp"
#include "store/memory/memory_store.hpp"

namespace herald::http {
namespace {

using Strings = std::vector<std::string>;

const Strings kTopics = {"a",
                         "b",
                         "c",
                         "room/1",
                         "room/2",
                         "room/1/x",
                         "books/7",
                         "books/8/ch/1",
                         "$sys/connections",
                         "$sys/other"};
const Strings kSelectors = {
    "a", "b",         "c",          "room/1", "room/2",           "room/1/x",        "books/7",
    "*", "room/{id}", "books/{id}", "{x}/1",  "books/{b}/ch/{c}", "$sys/connections"};

// The model's own selector matching, independent of hub::Selector: "*" is every topic but
// system ones; a template's {var} is one or more characters other than '/'.
bool model_matches(const std::string& selector, const std::string& topic) {
    const bool system = topic.rfind("$sys/", 0) == 0;
    if (selector == "*") {
        return !system;
    }
    if (selector.find('{') == std::string::npos) {
        return selector == topic;
    }
    if (system) {
        return false;
    }
    static std::map<std::string, std::regex> compiled;
    auto it = compiled.find(selector);
    if (it == compiled.end()) {
        std::regex re(std::regex_replace(selector, std::regex("\\{[^}]*\\}"), "[^/]+"));
        it = compiled.emplace(selector, std::move(re)).first;
    }
    return std::regex_match(topic, it->second);
}

bool any_matches(const Strings& selectors, const std::string& topic) {
    for (const auto& s : selectors) {
        if (model_matches(s, topic)) {
            return true;
        }
    }
    return false;
}

struct ModelCaller {
    bool root = false;
    bool open = false; // auth off
    Strings read;      // own + anonymous grants
    Strings own;       // own grants: private reads

    bool may_read(const std::string& t) const { return open || root || any_matches(read, t); }
    bool may_read_private(const std::string& t) const { return root || any_matches(own, t); }
};

class Recorder final : public hub::Subscriber {
public:
    void lose() override { lost = true; }
    bool lost = false;
    void deliver(const log::Event& event) override { ids.push_back(event.id); }
    void flush() override {}
    Strings ids;
};

struct Sub {
    std::unique_ptr<Recorder> rec;
    ModelCaller caller;
    Strings exact;    // as asked
    Strings patterns; // as asked ("*" when no topic)
    unsigned worker = 0;
};

Strings pick(std::mt19937& rng, const Strings& from, int max) {
    Strings out;
    const int n = std::uniform_int_distribution<int>(0, max)(rng);
    for (int i = 0; i < n; ++i) {
        out.push_back(from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)]);
    }
    return out;
}

unsigned seed_from_env() {
    if (const char* s = std::getenv("HERALD_PROPERTY_SEED")) {
        return static_cast<unsigned>(std::strtoul(s, nullptr, 10));
    }
    return std::random_device{}();
}

TEST(AccessProperty, SubscribersGetExactlyWhatTheyMayReadAndFollow) {
    const unsigned seed = seed_from_env();
    SCOPED_TRACE("HERALD_PROPERTY_SEED=" + std::to_string(seed));
    std::mt19937 rng(seed);
    std::bernoulli_distribution coin(0.5);
    net::WorkerStats stats;
    std::size_t delivered_total = 0;
    std::size_t refused_total = 0;

    for (int round = 0; round < 500; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        // Configuration: auth off, tokens with anonymous grants, or tokens under AUTH_TOKEN.
        const int mode = std::uniform_int_distribution<int>(0, 5)(rng);
        const bool open = mode == 0;
        const bool with_root = mode == 1;
        config::AuthConfig cfg;
        Strings anonymous_read;
        std::vector<Strings> token_read;
        if (!open) {
            anonymous_read = pick(rng, kSelectors, 2);
            cfg.anonymous.subscribe = anonymous_read;
            const int tokens = std::uniform_int_distribution<int>(1, 12)(rng);
            for (int i = 0; i < tokens; ++i) {
                config::TokenConfig t;
                t.token = "t" + std::to_string(i);
                t.subscribe = pick(rng, kSelectors, 4);
                token_read.push_back(t.subscribe);
                cfg.tokens.push_back(std::move(t));
            }
        }
        const auth::Authenticator authn(
            cfg, with_root ? std::optional<std::string>("root") : std::nullopt, "");

        store::MemoryStore store(store::Retention{100000, 1000000000, 0}, 1);
        std::vector<unsigned> scheduled;
        hub::Hub hub(store, 2, [&scheduled](unsigned w) { scheduled.push_back(w); });
        auto drain = [&] {
            for (unsigned w : std::exchange(scheduled, {})) {
                hub.shard(w).drain();
            }
        };

        std::vector<Sub> subs;
        auto add_subscriber = [&](bool resume) {
            // Who: a token, anonymous, or the root token.
            Sub s;
            std::optional<std::string> credential;
            const int who = std::uniform_int_distribution<int>(0, 9)(rng);
            if (open) {
                s.caller.open = true;
            } else if (with_root && who == 0) {
                credential = "root";
                s.caller.root = true;
            } else if (who <= 6) {
                const auto i =
                    std::uniform_int_distribution<std::size_t>(0, token_read.size() - 1)(rng);
                credential = "t" + std::to_string(i);
                s.caller.own = token_read[i];
                s.caller.read = token_read[i];
                if (!with_root) {
                    s.caller.read.insert(s.caller.read.end(), anonymous_read.begin(),
                                         anonymous_read.end());
                }
            } else {
                s.caller.read = with_root ? Strings{} : anonymous_read;
            }
            auto result = authn.authenticate(credential, 0);
            if (with_root && !credential) {
                ASSERT_TRUE(std::holds_alternative<auth::Refusal>(result));
                return;
            }
            ASSERT_TRUE(std::holds_alternative<auth::PrincipalPtr>(result));
            const auto& principal = *std::get<auth::PrincipalPtr>(result);

            // What: exact topics, patterns, or nothing ("*").
            hub::Interest interest;
            for (const auto& sel : pick(rng, kSelectors, 3)) {
                auto parsed = hub::Selector::parse(sel);
                if (parsed.is_exact()) {
                    s.exact.push_back(sel);
                    interest.exact.push_back(sel);
                } else {
                    s.patterns.push_back(sel);
                    interest.patterns.push_back(std::move(parsed));
                }
            }
            if (s.exact.empty() && s.patterns.empty()) {
                s.patterns.push_back("*");
                interest.patterns.push_back(hub::Selector::parse("*"));
            }

            // The model's verdict on the subscription itself.
            bool refused = false;
            for (const auto& t : s.exact) {
                refused = refused || !s.caller.may_read(t);
            }
            const bool reads_nothing = !s.caller.open && !s.caller.root && s.caller.read.empty();
            refused = refused || (!s.patterns.empty() && reads_nothing);

            auto refusal = authorize(interest, principal, stats);
            ASSERT_EQ(refusal.has_value(), refused);
            if (refusal) {
                ASSERT_EQ(refusal->status, principal.anonymous() ? 401 : 403);
                ++refused_total;
                return;
            }
            s.rec = std::make_unique<Recorder>();
            s.worker = std::uniform_int_distribution<unsigned>(0, 1)(rng);
            auto sub = hub.shard(s.worker).subscribe(*s.rec, std::move(interest),
                                                     resume ? std::optional<std::string>("earliest")
                                                            : std::nullopt);
            for (const auto& ev : sub.replay.events) {
                s.rec->ids.push_back(ev->id);
            }
            subs.push_back(std::move(s));
        };

        std::vector<log::EventPtr> history;
        auto publish_some = [&](int n) {
            for (int i = 0; i < n; ++i) {
                log::NewEvent ev;
                ev.topics = pick(rng, kTopics, 3);
                if (ev.topics.empty()) {
                    ev.topics.push_back(kTopics[0]);
                }
                ev.data = "d";
                ev.is_private = std::bernoulli_distribution(0.3)(rng);
                auto res = hub.publish(std::move(ev));
                ASSERT_EQ(res.error, hub::PublishError::none);
                history.push_back(res.event);
            }
        };

        // Some subscribers from the start, live; others half way, resuming from `earliest`
        // (a replay, then live). Either way each sees the whole history, filtered.
        for (int i = 0; i < 12; ++i) {
            add_subscriber(false);
        }
        publish_some(40);
        drain();
        for (int i = 0; i < 8; ++i) {
            add_subscriber(true);
        }
        publish_some(40);
        drain();

        for (std::size_t k = 0; k < subs.size(); ++k) {
            Sub& s = subs[k];
            Strings expected;
            for (const auto& ptr : history) {
                const log::Event& ev = *ptr;
                bool wanted = false;
                for (const auto& t : ev.topics) {
                    const bool followed =
                        std::find(s.exact.begin(), s.exact.end(), t) != s.exact.end() ||
                        any_matches(s.patterns, t);
                    if (followed && s.caller.may_read(t) &&
                        (!ev.is_private || s.caller.may_read_private(t))) {
                        wanted = true;
                    }
                }
                if (wanted) {
                    expected.push_back(ev.id);
                }
            }
            std::string who = s.caller.open ? "open" : s.caller.root ? "root" : "token/anonymous";
            ASSERT_EQ(s.rec->ids, expected) << "subscriber " << k << " (" << who << ")";
            delivered_total += expected.size();
        }
        for (auto& s : subs) {
            hub.shard(s.worker).unsubscribe(*s.rec);
        }
    }
    // The generator must exercise both outcomes, or the property says little.
    EXPECT_GT(delivered_total, 1000U);
    EXPECT_GT(refused_total, 50U);
}

} // namespace
} // namespace herald::http
