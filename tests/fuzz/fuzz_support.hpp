// What the fuzz targets share: a check that stops the run with the property that failed
// (libFuzzer keeps the input), and the cutting of one input into the reads a socket or a
// stream could deliver it in.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

// Not assert(): the fuzz build defines NDEBUG, and a property must hold in every build.
#define HERALD_FUZZ_CHECK(cond)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);       \
            std::abort();                                                                          \
        }                                                                                          \
    } while (false)

namespace herald::fuzz {

// Cuts `bytes` into consecutive pieces whose sizes the fuzzer picks from `data` (up to 32
// cuts; a size of 0 is an empty read). The pieces joined give `bytes` back.
inline std::vector<std::string_view> split(std::string_view bytes, FuzzedDataProvider& data) {
    std::vector<std::string_view> pieces;
    const auto cuts = data.ConsumeIntegralInRange<std::size_t>(0, 32);
    for (std::size_t i = 0; i < cuts && !bytes.empty(); ++i) {
        const auto n = data.ConsumeIntegralInRange<std::size_t>(0, bytes.size());
        pieces.push_back(bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
    pieces.push_back(bytes);
    return pieces;
}

} // namespace herald::fuzz
