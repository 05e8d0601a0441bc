// The write queue's bookkeeping: the unwritten bytes, the gauge and the vector's storage.
#include "net/write_queue.hpp"

namespace herald::net {

void WriteQueue::push(base::BufferRef frame) {
    const std::size_t n = frame.size();
    if (n == 0) {
        return;
    }
    bytes_ += n;
    if (gauge_ != nullptr) {
        WorkerStats::add(*gauge_, n);
    }
    frames_.push_back(std::move(frame));
}

std::size_t WriteQueue::gather(std::span<boost::asio::const_buffer> out) const noexcept {
    std::size_t n = 0;
    for (std::size_t i = head_; i < frames_.size() && n < out.size(); ++i, ++n) {
        const base::BufferRef& frame = frames_[i];
        const std::size_t skip = i == head_ ? offset_ : 0;
        out[n] = boost::asio::const_buffer(frame.data() + skip, frame.size() - skip);
    }
    return n;
}

void WriteQueue::clear() noexcept {
    release(bytes_);
    frames_.clear();
    frames_.shrink_to_fit();
    head_ = 0;
    offset_ = 0;
}

void WriteQueue::release(std::size_t n) noexcept {
    bytes_ -= n;
    if (gauge_ != nullptr) {
        WorkerStats::sub(*gauge_, n);
    }
}

void WriteQueue::compact() {
    if (head_ == frames_.size()) {
        head_ = 0;
        // Keep a small queue's storage for the next event; give a large one back.
        if (frames_.capacity() > 64) {
            frames_ = std::vector<base::BufferRef>();
        } else {
            frames_.clear();
        }
    } else if (head_ > 1024 && head_ * 2 > frames_.size()) {
        frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
}

} // namespace herald::net
