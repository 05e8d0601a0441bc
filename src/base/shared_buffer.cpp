// Allocation and release of SharedBuffer: the count and the bytes share one block.
#include "base/shared_buffer.hpp"

#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace herald::base {

BufferRef BufferRef::copy_of(std::string_view bytes) {
    if (bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("SharedBuffer: more than 4 GiB");
    }
    void* block = ::operator new(sizeof(SharedBuffer) + bytes.size());
    auto* buf = new (block) SharedBuffer();
    buf->size_ = static_cast<std::uint32_t>(bytes.size());
    if (!bytes.empty()) {
        std::memcpy(static_cast<char*>(block) + sizeof(SharedBuffer), bytes.data(), bytes.size());
    }
    return BufferRef(buf);
}

BufferRef::~BufferRef() {
    if (buf_ != nullptr && buf_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        buf_->~SharedBuffer();
        ::operator delete(static_cast<void*>(buf_));
    }
}

} // namespace herald::base
