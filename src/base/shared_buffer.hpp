// An immutable, reference-counted byte buffer: one allocation holds the count and the bytes.
// An SSE frame is encoded once into a SharedBuffer and then queued, by reference, on every
// subscriber that receives it; no subscriber ever copies it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace herald::base {

class SharedBuffer;

// A counted reference to a SharedBuffer. Copying costs one atomic increment; the buffer is
// freed when the last reference goes. Safe to pass between threads; the bytes never change.
class BufferRef {
public:
    BufferRef() noexcept = default;
    BufferRef(const BufferRef& other) noexcept;
    BufferRef(BufferRef&& other) noexcept : buf_(std::exchange(other.buf_, nullptr)) {}
    BufferRef& operator=(const BufferRef& other) noexcept;
    BufferRef& operator=(BufferRef&& other) noexcept;
    ~BufferRef();

    // Copies `bytes` into a new buffer.
    [[nodiscard]] static BufferRef copy_of(std::string_view bytes);

    [[nodiscard]] const char* data() const noexcept;
    [[nodiscard]] std::size_t size() const noexcept;
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }
    explicit operator bool() const noexcept { return buf_ != nullptr; }

private:
    explicit BufferRef(SharedBuffer* buf) noexcept : buf_(buf) {}
    SharedBuffer* buf_ = nullptr;
};

// The header in front of the bytes; only BufferRef creates and frees it.
class SharedBuffer {
private:
    friend class BufferRef;
    std::atomic<std::uint32_t> refs_{1};
    std::uint32_t size_ = 0;
    // The bytes follow the header in the same allocation.
    [[nodiscard]] const char* bytes() const noexcept {
        return reinterpret_cast<const char*>(this + 1);
    }
};

inline BufferRef::BufferRef(const BufferRef& other) noexcept : buf_(other.buf_) {
    if (buf_ != nullptr) {
        buf_->refs_.fetch_add(1, std::memory_order_relaxed);
    }
}

inline BufferRef& BufferRef::operator=(const BufferRef& other) noexcept {
    BufferRef copy(other);
    std::swap(buf_, copy.buf_);
    return *this;
}

inline BufferRef& BufferRef::operator=(BufferRef&& other) noexcept {
    BufferRef moved(std::move(other));
    std::swap(buf_, moved.buf_);
    return *this;
}

inline const char* BufferRef::data() const noexcept {
    return buf_ != nullptr ? buf_->bytes() : nullptr;
}

inline std::size_t BufferRef::size() const noexcept {
    return buf_ != nullptr ? buf_->size_ : 0;
}

} // namespace herald::base
