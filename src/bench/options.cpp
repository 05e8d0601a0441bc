#include "bench/options.hpp"

#include "base/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iterator>
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
    e.url = url;
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

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t");
    return std::string(s.substr(first, last - first + 1));
}

} // namespace

std::vector<std::string> split_list(const std::vector<std::string>& values, std::string_view what) {
    std::vector<std::string> out;
    for (const auto& value : values) {
        std::size_t start = 0;
        for (;;) {
            const auto comma = value.find(',', start);
            std::string item = trim(std::string_view(value).substr(
                start, comma == std::string::npos ? std::string::npos : comma - start));
            if (item.empty()) {
                bad(std::string(what) + " has an empty item in '" + value +
                    "' (a comma inside a URL is written %2C)");
            }
            out.push_back(std::move(item));
            if (comma == std::string::npos) {
                break;
            }
            start = comma + 1;
        }
    }
    return out;
}

std::vector<AuxProcess> parse_aux_pids(const std::vector<std::string>& values) {
    std::vector<AuxProcess> out;
    for (const auto& value : values) {
        const auto eq = value.find('=');
        const std::string name = value.substr(0, std::min(eq, value.size()));
        if (eq == std::string::npos || name.empty() || name.size() > 64 ||
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_.-") != std::string::npos) {
            bad("--aux-pid takes NAME=PID[,PID...] with a NAME of letters, digits, '_', '.' or "
                "'-' (got '" +
                value + "')");
        }
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const AuxProcess& a) { return a.name == name; });
        if (it == out.end()) {
            out.push_back({name, {}});
            it = std::prev(out.end());
        }
        for (const auto& item : split_list({value.substr(eq + 1)}, "--aux-pid")) {
            long pid = 0;
            const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), pid);
            if (ec != std::errc{} || end != item.data() + item.size() || pid <= 0) {
                bad("--aux-pid takes process ids above 0 (got '" + value + "')");
            }
            it->pids.push_back(pid);
        }
    }
    return out;
}

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
    std::vector<std::string> bases;
    for (const std::string& url : split_list(o.urls, "--url")) {
        std::string base = url;
        while (!base.empty() && base.back() == '/') {
            base.pop_back();
        }
        if (base.rfind("http://", 0) != 0) {
            bad("--url must start with http:// (got '" + url + "')");
        }
        bases.push_back(std::move(base));
    }
    auto endpoints = [&](const std::vector<std::string>& given, const char* what,
                         const char* path) {
        std::vector<std::string> urls = split_list(given, what);
        if (urls.empty()) {
            if (bases.empty()) {
                bad(std::string("--url is needed unless --sub-url and --pub-url are given (no ") +
                    what + ")");
            }
            for (const auto& base : bases) {
                urls.push_back(base + path);
            }
        }
        std::vector<Endpoint> out;
        out.reserve(urls.size());
        for (const auto& url : urls) {
            out.push_back(parse_endpoint(url, what));
        }
        return out;
    };
    plan.subs = endpoints(o.sub_urls, "--sub-url", "/events?topic={topic}");
    plan.pubs = endpoints(o.pub_urls, "--pub-url", "/events");
    plan.aux = parse_aux_pids(o.aux_pids);
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
