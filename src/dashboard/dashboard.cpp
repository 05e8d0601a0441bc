#include "dashboard/dashboard.hpp"

#include <algorithm>

namespace herald::dashboard {

const File* find(std::string_view name) noexcept {
    if (name.empty()) {
        name = "index.html";
    }
    auto all = files();
    auto it = std::lower_bound(all.begin(), all.end(), name,
                               [](const File& f, std::string_view n) { return f.name < n; });
    return it != all.end() && it->name == name ? &*it : nullptr;
}

} // namespace herald::dashboard
