// Tests for the compiled-in dashboard files: the lookup, and that the bytes are those of
// src/dashboard/web (HERALD_DASHBOARD_WEB), byte for byte, with distinct ETags.
#include "dashboard/dashboard.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace herald::dashboard {
namespace {

TEST(Dashboard, FindsEachFileAndTheIndexForTheFolder) {
    const File* index = find("");
    ASSERT_NE(index, nullptr);
    EXPECT_EQ(index->name, "index.html");
    EXPECT_EQ(find("index.html"), index);
    for (const char* name : {"app.js", "sse.js", "chart.js", "style.css"}) {
        const File* f = find(name);
        ASSERT_NE(f, nullptr) << name;
        EXPECT_EQ(f->name, name);
    }
    for (const char* name : {"nope.js", "app.j", "app.jsx", "/app.js", "../app.js", "web/app.js"}) {
        EXPECT_EQ(find(name), nullptr) << name;
    }
}

TEST(Dashboard, BytesAreTheSourceFilesAndTagsDiffer) {
    namespace fs = std::filesystem;
    std::set<std::string> names;
    std::set<std::string_view> tags;
    for (const auto& entry : fs::directory_iterator(HERALD_DASHBOARD_WEB)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        const std::string name = entry.path().filename().string();
        const File* f = find(name);
        ASSERT_NE(f, nullptr) << name;
        EXPECT_EQ(f->body, bytes) << name;
        EXPECT_EQ(f->etag.size(), 22U) << name;
        EXPECT_EQ(f->etag.front(), '"');
        tags.insert(f->etag);
        names.insert(name);
    }
    EXPECT_EQ(names.size(), files().size());
    EXPECT_EQ(tags.size(), files().size());
}

} // namespace
} // namespace herald::dashboard
