#include "bench/options.hpp"

#include "base/text.hpp"

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace herald::bench {

namespace {

[[noreturn]] void bad(const std::string& message) {
    throw std::invalid_argument(message);
}

// http://HOST[:PORT]/rest -> the endpoint; the rest is a template.
Endpoint parse_endpoint(const std::string& url, std::string_view what) {
    constexpr std::string_view scheme = "http://";
    if (url.rfind(scheme, 0) != 0) {
        bad(std::string(what) + " must start with http:// (got '" + url + "')");
    }
    std::string rest = url.substr(scheme.size());
    auto end = rest.find_first_of("/?");
    std::string authority = rest.substr(0, end);
    std::string target = end == std::string::npos ? "/"
                         : rest[end] == '?'       ? "/" + rest.substr(end)
                                                  : rest.substr(end);
    if (authority.find_first_of("@#") != std::string::npos ||
        target.find('#') != std::string::npos) {
        bad(std::string(what) + " may not hold user info or a fragment (got '" + url + "')");
    }
    Endpoint e;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string::npos) {
            bad("bad address in " + std::string(what) + " '" + url + "'");
        }
        e.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] != ':') {
            bad("bad address in " + std::string(what) + " '" + url + "'");
        }
        e.port = close + 1 < authority.size() ? authority.substr(close + 2) : "80";
    } else {
        auto colon = authority.rfind(':');
        e.host = authority.substr(0, colon);
        e.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
    }
    if (e.host.empty() || e.port.empty() || e.port.size() > 5 ||
        e.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(e.port) < 1 ||
        std::stoi(e.port) > 65535) {
        bad("bad host or port in " + std::string(what) + " '" + url + "'");
    }
    e.host_header = authority;
    e.target = parse_template(target, what, false);
    return e;
}

} // namespace

std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (ch == '\n') {
            out += "\\n";
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

Template parse_template(std::string_view text, std::string_view what, bool body) {
    Template t;
    auto literal = [&](std::string_view s) {
        if (s.empty()) {
            return;
        }
        if (t.empty() || t.back().field != Field::literal) {
            t.push_back({Field::literal, {}});
        }
        t.back().text.append(s);
    };
    std::size_t i = 0;
    while (i < text.size()) {
        auto open = text.find('{', i);
        if (open == std::string_view::npos) {
            literal(text.substr(i));
            break;
        }
        // A placeholder is `{` letters or colons `}`; any other brace is text (JSON bodies).
        std::size_t j = open + 1;
        while (j < text.size() &&
               (std::islower(static_cast<unsigned char>(text[j])) != 0 || text[j] == ':')) {
            ++j;
        }
        if (j == open + 1 || j >= text.size() || text[j] != '}') {
            literal(text.substr(i, open + 1 - i));
            i = open + 1;
            continue;
        }
        literal(text.substr(i, open - i));
        std::string_view name = text.substr(open + 1, j - open - 1);
        Field f = Field::literal;
        if (name == "topic") {
            f = body ? Field::topic : Field::topic_form;
        } else if (body && name == "topic:form") {
            f = Field::topic_form;
        } else if (body && name == "data") {
            f = Field::data;
        } else if (body && name == "data:form") {
            f = Field::data_form;
        } else if (body && name == "data:json") {
            f = Field::data_json;
        } else {
            bad("unknown placeholder {" + std::string(name) + "} in " + std::string(what) +
                (body ? " (known: {topic} {topic:form} {data} {data:form} {data:json})"
                      : " (a URL takes {topic} only)"));
        }
        t.push_back({f, {}});
        i = j + 1;
    }
    return t;
}

std::string expand(const Template& t, std::string_view topic, std::string_view data) {
    std::string out;
    for (const auto& p : t) {
        switch (p.field) {
        case Field::literal: out += p.text; break;
        case Field::topic: out += topic; break;
        case Field::topic_form: out += base::percent_encode(topic); break;
        case Field::data: out += data; break;
        case Field::data_form: out += base::percent_encode(data); break;
        case Field::data_json: out += json_escape(data); break;
        }
    }
    return out;
}

Plan make_plan(Options& o) {
    if (o.subscribers < 0) {
        bad("--subscribers must be 0 or more");
    }
    if (o.topics < 1) {
        bad("--topics must be 1 or more");
    }
    if (o.processes < 1 || o.processes > 256) {
        bad("--processes must be 1..256");
    }
    if (o.threads < 1 || o.threads > 256) {
        bad("--threads must be 1..256");
    }
    if (o.connect_window < 1) {
        bad("--connect-window must be 1 or more");
    }
    if (o.source_ips < 1 || o.source_ips > 254) {
        bad("--source-ips must be 1..254");
    }
    if (o.publishers < 0 || o.publishers > 4096) {
        bad("--publishers must be 0..4096");
    }
    if (o.payload < 0 || o.payload > 1 << 20) {
        bad("--payload must be 0..1048576");
    }
    if (o.stalled < 0 || o.stalled > 10000) {
        bad("--stalled must be between 0 and 10000");
    }
    if (o.rate < 0 || o.duration < 0 || o.churn < 0 || o.churn_hold_ms < 0 || o.settle < 0 ||
        o.drain < 0) {
        bad("--rate, --duration, --churn, --churn-hold, --settle and --drain must be 0 or more");
    }
    for (long pid : o.pids) {
        if (pid <= 0) {
            bad("--pid takes process ids above 0");
        }
    }
    if (o.idle || o.publishers == 0) {
        o.idle = true;
        o.publishers = 0;
    }
    o.processes = std::max(1, std::min(o.processes, std::max(1, o.subscribers)));

    Plan plan;
    std::string base = o.url;
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    if (base.rfind("http://", 0) != 0) {
        bad("--url must start with http:// (got '" + o.url + "')");
    }
    plan.sub =
        parse_endpoint(o.sub_url.empty() ? base + "/events?topic={topic}" : o.sub_url, "--sub-url");
    plan.pub = parse_endpoint(o.pub_url.empty() ? base + "/events" : o.pub_url, "--pub-url");
    plan.body = parse_template(o.pub_body, "--pub-body", true);
    for (const auto& h : o.headers) {
        auto colon = h.find(':');
        if (colon == std::string::npos || colon == 0 ||
            h.find_first_of("\r\n") != std::string::npos) {
            bad("--header must be 'Name: value' (got '" + h + "')");
        }
        plan.extra_headers += h + "\r\n";
    }
    const std::string prefix = o.topics > 1 && !o.topic_given ? "t" : o.topic;
    for (int t = 0; t < o.topics; ++t) {
        plan.topic_names.push_back(o.topics > 1 ? prefix + std::to_string(t) : o.topic);
    }
    return plan;
}

} // namespace herald::bench
