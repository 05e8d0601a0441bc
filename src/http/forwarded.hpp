// Who a request is from when it came through a trusted proxy: the client's address taken
// from `Forwarded` (RFC 7239, its `for=` parameters) or else `X-Forwarded-For`, read from
// the right (the hop nearest to herald), skipping the addresses that are themselves
// trusted proxies. From any other peer these headers are ignored. Pure: no sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip_address.hpp"

namespace herald::http {

// One hop's node as a header names it: an address, or nothing when the proxy hid it
// (`unknown`, an obfuscated `_name`) or wrote something that is not an address.
using Hop = std::optional<base::IpAddress>;

// The `for=` nodes of every element of `Forwarded` field values, in order (several field
// lines are one list, as joined with commas). An element with no `for=` is an unknown hop.
// nullopt when the value does not parse as RFC 7239 elements (the header is then ignored).
[[nodiscard]] std::optional<std::vector<Hop>>
forwarded_hops(const std::vector<std::string_view>& values);

// The nodes of `X-Forwarded-For` field values, in order (bare addresses; brackets and a
// port after them tolerated, as some proxies write them).
[[nodiscard]] std::vector<Hop> x_forwarded_for_hops(const std::vector<std::string_view>& values);

// A node as a header writes it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
// `[2001:db8::1]:4711`, or a bare `2001:db8::1`. nullopt for `unknown`, `_hidden` and
// anything else.
[[nodiscard]] Hop parse_node(std::string_view node);

// The client of a request whose socket peer is `peer`: `peer` itself unless it is in
// `trusted`; else the right-most hop that is not a trusted proxy, taken from `Forwarded`
// when the request has one, else from `X-Forwarded-For`. When that hop is unknown or not
// an address, when the header does not parse, or when there is none, the answer is `peer`;
// when every hop is a trusted proxy, the left-most one.
[[nodiscard]] base::IpAddress client_address(const base::IpAddress& peer,
                                             const std::vector<base::IpNetwork>& trusted,
                                             const std::vector<std::string_view>& forwarded,
                                             const std::vector<std::string_view>& x_forwarded_for);

} // namespace herald::http
