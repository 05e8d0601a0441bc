// A bound on how deeply JSON from the network may nest, checked before any JSON library sees
// the text: nlohmann's dump() and comparisons recurse once per level, so a 200 KB body of
// nested arrays would otherwise overflow the stack of the worker that handles it.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::base {

// The deepest nesting of arrays and objects that herald accepts in a JSON text it is sent
// (a publish body, a JWT's header or payload). The outermost array or object counts as 1:
// in a publish body `{"topic": ..., "data": [[1]]}` is 3 deep.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Whether `text` nests arrays and objects at most `max_depth` deep. Counts the brackets
// outside strings in one pass, with no recursion and no allocation. For valid JSON that is
// the exact depth; for invalid JSON the answer does not matter, as the parser refuses it.
[[nodiscard]] bool json_depth_within(std::string_view text,
                                     std::size_t max_depth = kMaxJsonDepth) noexcept;

} // namespace herald::base
