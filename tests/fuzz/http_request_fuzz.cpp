// The HTTP/1.1 request glue (http/request_reader) as Http1Session drives it: requests read
// until one is refused or ends the connection, pipelined ones included. The same bytes cut
// into reads at fuzzer-chosen places must give what they give in one read (requests,
// refusals, 100-continue answers; one exception, Beast's, below); no request's body passes
// the limit; and two well-formed requests the fuzzer composes must come back as written.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "http/form.hpp"
#include "http/request_reader.hpp"

namespace {

using herald::http::HttpError;
using herald::http::Request;
using herald::http::RequestReader;

// What the session would do with one request.
struct Outcome {
    std::optional<HttpError> refused;
    std::string detail;
    std::optional<HttpError> bad_target;
    int continues = 0; // 100-continue answers sent before it was whole
    // The request, when neither refused nor a bad target.
    std::string method, target, path, content_type, accept, body;
    std::vector<std::pair<std::string, std::string>> query;
    std::optional<std::string> last_event_id, authorization, cookie, origin, if_none_match;
    bool preflight = false;
    bool keep_alive = false;
    std::vector<std::string> forwarded, x_forwarded_for;

    bool operator==(const Outcome&) const = default;
};

struct Session {
    std::vector<Outcome> outcomes;
    bool incomplete = false; // the last request had not ended when the bytes did
};

std::vector<std::string> copies(const std::vector<std::string_view>& views) {
    return {views.begin(), views.end()};
}

// Reads `pieces` as the session does: each piece fed as it comes, and after a request that
// keeps the connection, the next one started on what is pending.
Session read_all(const std::vector<std::string_view>& pieces, std::size_t body_limit) {
    Session s;
    RequestReader reader;
    reader.start(body_limit);
    int continues = 0;
    const auto send_continue = [&continues] {
        ++continues;
        return true;
    };
    // True when the connection goes on after this request.
    const auto finish = [&]() {
        Outcome o;
        o.continues = continues;
        continues = 0;
        if (reader.refused()) {
            o.refused = reader.refused();
            o.detail = reader.detail();
            s.outcomes.push_back(std::move(o));
            return false;
        }
        auto taken = reader.take_request();
        if (auto* error = std::get_if<HttpError>(&taken)) {
            o.bad_target = *error;
            s.outcomes.push_back(std::move(o));
            return false;
        }
        Request r = std::move(std::get<Request>(taken));
        HERALD_FUZZ_CHECK(r.body.size() <= body_limit);
        HERALD_FUZZ_CHECK(!r.target.empty() && r.target.front() == '/');
        HERALD_FUZZ_CHECK(r.path ==
                          herald::http::decode_path(r.target.substr(0, r.target.find('?'))));
        o.method = r.method;
        o.target = r.target;
        o.path = r.path;
        o.content_type = r.content_type;
        o.accept = r.accept;
        o.body = r.body;
        o.query = r.query;
        o.last_event_id = r.last_event_id;
        o.authorization = r.authorization;
        o.cookie = r.cookie;
        o.origin = r.origin;
        o.if_none_match = r.if_none_match;
        o.preflight = r.preflight;
        o.keep_alive = r.keep_alive;
        o.forwarded = copies(reader.forwarded());
        o.x_forwarded_for = copies(reader.x_forwarded_for());
        s.outcomes.push_back(std::move(o));
        if (!r.keep_alive) {
            return false;
        }
        reader.start(body_limit);
        return true;
    };
    for (const auto piece : pieces) {
        if (piece.empty()) {
            // A read never gives 0 bytes: the session feeds nothing only to start a pipelined
            // request, as below.
            continue;
        }
        bool done = reader.feed(piece, send_continue);
        while (done) {
            if (!finish()) {
                return s;
            }
            // A pipelined request may be whole already.
            done = reader.has_pending() && reader.feed({}, send_continue);
        }
    }
    s.incomplete = reader.started();
    return s;
}

bool operator==(const Session& a, const Session& b) {
    return a.outcomes == b.outcomes && a.incomplete == b.incomplete;
}

// A request as a client would write it, from fuzzer-chosen parts, and what it must read as.
std::string compose(FuzzedDataProvider& data, Outcome& want) {
    static const char* const kMethods[] = {"GET", "POST", "HEAD", "OPTIONS", "DELETE"};
    static const char* const kFields[] = {"Content-Type",  "Accept", "Last-Event-ID",
                                          "Authorization", "Origin", "If-None-Match",
                                          "X-Other"};
    want.method = data.PickValueInArray(kMethods);
    // Target characters a client may send unescaped, '%' and '+' included.
    auto token = [&data](std::size_t max, std::string_view extra) {
        std::string out;
        for (const char c : data.ConsumeRandomLengthString(max)) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || extra.find(c) != std::string_view::npos;
            out.push_back(ok ? c : 'x');
        }
        return out;
    };
    want.target = "/" + token(64, "/-._~%+=&?");
    want.path = herald::http::decode_path(want.target.substr(0, want.target.find('?')));
    if (const auto q = want.target.find('?'); q != std::string::npos) {
        for (auto& f : herald::http::decode_form(std::string_view(want.target).substr(q + 1))) {
            want.query.emplace_back(std::move(f.key), std::move(f.value));
        }
    }
    std::string out = want.method + " " + want.target + " HTTP/1.1\r\nHost: hub\r\n";
    const auto fields = data.ConsumeIntegralInRange<int>(0, 4);
    for (int i = 0; i < fields; ++i) {
        const std::string name = data.PickValueInArray(kFields);
        // Field values: visible ASCII and inner spaces (a value's edges are trimmed).
        const std::string value = "v" + token(32, " !#$%&'()*+,-./:;<=>?@[]^_`{|}~") + "v";
        if (name == "X-Other" || name == "Content-Type" || name == "Accept" ||
            name == "Last-Event-ID" || name == "Authorization" || name == "Origin" ||
            name == "If-None-Match") {
            // Only the first of a repeated field is read.
            auto set_once = [&value](auto& field) {
                if (field.empty()) {
                    field = value;
                }
            };
            auto set_once_opt = [&value](std::optional<std::string>& field) {
                if (!field) {
                    field = value;
                }
            };
            if (name == "Content-Type") {
                set_once(want.content_type);
            } else if (name == "Accept") {
                set_once(want.accept);
            } else if (name == "Last-Event-ID") {
                set_once_opt(want.last_event_id);
            } else if (name == "Authorization") {
                set_once_opt(want.authorization);
            } else if (name == "Origin") {
                set_once_opt(want.origin);
            } else if (name == "If-None-Match") {
                set_once_opt(want.if_none_match);
            }
        }
        out += name + ": " + value + "\r\n";
    }
    want.body = data.ConsumeRandomLengthString(128);
    if (data.ConsumeBool()) {
        out += "Transfer-Encoding: chunked\r\n\r\n";
        std::string_view rest = want.body;
        while (!rest.empty()) {
            const auto n = data.ConsumeIntegralInRange<std::size_t>(1, rest.size());
            char size[16];
            std::snprintf(size, sizeof size, "%zx", n);
            out += std::string(size) + "\r\n" + std::string(rest.substr(0, n)) + "\r\n";
            rest.remove_prefix(n);
        }
        out += "0\r\n\r\n";
    } else if (!want.body.empty() || data.ConsumeBool()) {
        out += "Content-Length: " + std::to_string(want.body.size()) + "\r\n\r\n" + want.body;
    } else {
        out += "\r\n";
    }
    want.keep_alive = true;
    return out;
}

bool same_request(const Outcome& got, const Outcome& want) {
    return !got.refused && !got.bad_target && got.method == want.method &&
           got.target == want.target && got.path == want.path && got.query == want.query &&
           got.content_type == want.content_type && got.accept == want.accept &&
           got.last_event_id == want.last_event_id && got.authorization == want.authorization &&
           got.origin == want.origin && got.if_none_match == want.if_none_match &&
           got.body == want.body && got.keep_alive;
}

// For the report of a failed property: each outcome in one line.
void print(const char* name, const Session& s) {
    std::fprintf(stderr, "%s:%s\n", name, s.incomplete ? " (last request incomplete)" : "");
    for (const Outcome& o : s.outcomes) {
        if (o.refused) {
            std::fprintf(stderr, "  refused %d (%s), %d continues\n", static_cast<int>(*o.refused),
                         o.detail.c_str(), o.continues);
        } else if (o.bad_target) {
            std::fprintf(stderr, "  bad target\n");
        } else {
            std::fprintf(stderr, "  %s %s, body %zu bytes, keep-alive %d, %d continues\n",
                         o.method.c_str(), o.target.c_str(), o.body.size(), o.keep_alive,
                         o.continues);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    FuzzedDataProvider data(bytes, size);
    static constexpr std::size_t kLimits[] = {0, 5, 64, 1048576};
    const std::size_t limit = data.PickValueInArray(kLimits);
    const bool composed = data.ConsumeBool();
    std::string stream;
    std::vector<Outcome> wanted;
    if (composed) {
        // Two requests pipelined, each as a client writes it.
        for (int i = 0; i < 2; ++i) {
            Outcome want;
            stream += compose(data, want);
            wanted.push_back(std::move(want));
        }
    }
    const auto cut_bytes = data.ConsumeIntegralInRange<std::size_t>(0, 96);
    const std::string cuts = data.ConsumeBytesAsString(cut_bytes);
    if (!composed) {
        stream = data.ConsumeRemainingBytesAsString();
    }
    FuzzedDataProvider cut_data(reinterpret_cast<const std::uint8_t*>(cuts.data()), cuts.size());

    const Session whole = read_all({stream}, limit);
    const Session pieces = read_all(herald::fuzz::split(stream, cut_data), limit);
    // One difference is Beast's, and allowed: it checks a header as soon as the first read
    // of it arrives, but once it had to wait for more, only when the blank line that ends
    // the header has come. So a malformed header refused in one read may, cut, still wait
    // for its blank line (as may one whose folded field passes Beast's own small buffer,
    // which it answers with its header limit); and a header both malformed and over the
    // limit may be refused for either, depending on the cut (400, or 431 / 414).
    const auto header_refusal = [](const Outcome& o) {
        return o.refused == HttpError::malformed || o.refused == HttpError::header_too_large ||
               o.refused == HttpError::uri_too_long;
    };
    const bool refused_early =
        !whole.incomplete && !whole.outcomes.empty() && header_refusal(whole.outcomes.back()) &&
        ((pieces.incomplete && pieces.outcomes.size() + 1 == whole.outcomes.size()) ||
         (!pieces.incomplete && pieces.outcomes.size() == whole.outcomes.size() &&
          header_refusal(pieces.outcomes.back()))) &&
        std::equal(whole.outcomes.begin(), whole.outcomes.end() - 1, pieces.outcomes.begin());
    if (!(pieces == whole) && !refused_early) {
        print("whole", whole);
        print("in pieces", pieces);
    }
    HERALD_FUZZ_CHECK(pieces == whole || refused_early);
    if (composed && limit == 1048576) {
        HERALD_FUZZ_CHECK(whole.outcomes.size() == 2 && !whole.incomplete);
        for (std::size_t i = 0; i < 2; ++i) {
            HERALD_FUZZ_CHECK(same_request(whole.outcomes[i], wanted[i]));
        }
    }
    return 0;
}
