// RFC 7239 `Forwarded` and `X-Forwarded-For`, read leniently where proxies differ (an
// unquoted IPv6 in brackets, a port on an X-Forwarded-For entry) and strictly where a
// wrong reading would name the wrong client (a quoted string cut short, a stray byte).
#include "http/forwarded.hpp"

#include <algorithm>
#include <cctype>

namespace herald::http {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// RFC 7230 tchar, plus what an unquoted node may hold in practice (':' '[' ']').
bool is_value_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~:[]").find(c) != std::string_view::npos;
}

// Reads the Forwarded elements of one field value into `hops`. False on a syntax error.
bool read_forwarded(std::string_view s, std::vector<Hop>& hops) {
    std::size_t i = 0;
    auto skip_spaces = [&] {
        while (i < s.size() && is_space(s[i])) {
            ++i;
        }
    };
    for (;;) {
        // One element: pairs separated by ';', ended by ',' or the end.
        Hop hop;
        bool seen_for = false;
        bool empty_element = true;
        for (;;) {
            skip_spaces();
            if (i == s.size() || s[i] == ',') {
                break;
            }
            if (s[i] == ';') {
                ++i; // an empty pair, which RFC 7239's grammar allows
                continue;
            }
            const std::size_t name_start = i;
            while (i < s.size() && s[i] != '=' && s[i] != ';' && s[i] != ',' && !is_space(s[i])) {
                ++i;
            }
            const std::string_view name = s.substr(name_start, i - name_start);
            if (name.empty() || i == s.size() || s[i] != '=') {
                return false;
            }
            ++i; // '='
            std::string value;
            if (i < s.size() && s[i] == '"') {
                ++i;
                bool closed = false;
                while (i < s.size()) {
                    if (s[i] == '\\' && i + 1 < s.size()) {
                        value += s[i + 1];
                        i += 2;
                    } else if (s[i] == '"') {
                        ++i;
                        closed = true;
                        break;
                    } else {
                        value += s[i++];
                    }
                }
                if (!closed) {
                    return false;
                }
            } else {
                const std::size_t v_start = i;
                while (i < s.size() && is_value_char(s[i])) {
                    ++i;
                }
                value.assign(s.substr(v_start, i - v_start));
                if (value.empty()) {
                    return false;
                }
            }
            empty_element = false;
            if (iequals(name, "for")) {
                if (seen_for) {
                    return false; // one for= per element (RFC 7239 4)
                }
                seen_for = true;
                hop = parse_node(value);
            }
            skip_spaces();
            if (i < s.size() && s[i] == ';') {
                ++i;
                continue;
            }
            if (i < s.size() && s[i] != ',') {
                return false;
            }
        }
        if (!empty_element) {
            hops.push_back(hop);
        }
        if (i == s.size()) {
            return true;
        }
        ++i; // ','
    }
}

} // namespace

Hop parse_node(std::string_view node) {
    node = trim(node);
    if (node.empty()) {
        return std::nullopt;
    }
    if (node.front() == '[') {
        const auto close = node.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view rest = node.substr(close + 1);
        if (!rest.empty() && (rest.front() != ':' || rest.size() == 1)) {
            return std::nullopt; // what follows the brackets can only be a port
        }
        const std::string_view inner = node.substr(1, close - 1);
        if (inner.find(':') == std::string_view::npos) {
            return std::nullopt; // only an IPv6 text goes in brackets
        }
        return base::IpAddress::parse(inner);
    }
    const auto colons = std::count(node.begin(), node.end(), ':');
    if (colons == 1) {
        // IPv4 with a port.
        node = node.substr(0, node.find(':'));
        if (node.find('.') == std::string_view::npos) {
            return std::nullopt;
        }
    }
    return base::IpAddress::parse(node);
}

std::optional<std::vector<Hop>> forwarded_hops(const std::vector<std::string_view>& values) {
    std::vector<Hop> hops;
    for (std::string_view v : values) {
        if (!read_forwarded(v, hops)) {
            return std::nullopt;
        }
    }
    return hops;
}

std::vector<Hop> x_forwarded_for_hops(const std::vector<std::string_view>& values) {
    std::vector<Hop> hops;
    for (std::string_view v : values) {
        while (true) {
            const auto comma = v.find(',');
            const std::string_view item = trim(v.substr(0, comma));
            if (!item.empty()) {
                hops.push_back(parse_node(item));
            }
            if (comma == std::string_view::npos) {
                break;
            }
            v.remove_prefix(comma + 1);
        }
    }
    return hops;
}

base::IpAddress client_address(const base::IpAddress& peer,
                               const std::vector<base::IpNetwork>& trusted,
                               const std::vector<std::string_view>& forwarded,
                               const std::vector<std::string_view>& x_forwarded_for) {
    if (trusted.empty() || !base::any_contains(trusted, peer)) {
        return peer;
    }
    std::vector<Hop> hops;
    if (!forwarded.empty()) {
        auto parsed = forwarded_hops(forwarded);
        if (!parsed) {
            return peer;
        }
        hops = std::move(*parsed);
    } else {
        hops = x_forwarded_for_hops(x_forwarded_for);
    }
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        if (!*it) {
            return peer; // hidden or garbled: who is behind it is not known
        }
        if (!base::any_contains(trusted, **it)) {
            return **it;
        }
    }
    return hops.empty() ? peer : *hops.front();
}

} // namespace herald::http
