// The error every store throws when it cannot be opened (at start-up only: the data path
// reports failures in its results, never by throwing).
#pragma once

#include <stdexcept>

namespace herald::store {

// The store cannot be used: a sentence that names the store (a file, or a Redis URL without
// its password) and what is wrong.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace herald::store
