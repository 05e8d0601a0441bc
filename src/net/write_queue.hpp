// A connection's or a stream's output: immutable frames queued by reference and written
// oldest first with gathered writes. Bookkeeping only, no I/O: the transport gathers the
// unwritten pieces, writes them and reports how many bytes went out.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "base/shared_buffer.hpp"
#include "net/stats.hpp"

namespace herald::net {

class WriteQueue {
public:
    // Gathered writes take at most this many pieces (well under IOV_MAX).
    static constexpr std::size_t kMaxGather = 64;

    WriteQueue() = default;
    // `gauge`, when given, is kept equal to the sum of the unwritten bytes of every queue
    // that shares it (the worker's queued_bytes figure). It must outlive the queue.
    explicit WriteQueue(WorkerStats::Counter* gauge) noexcept : gauge_(gauge) {}
    WriteQueue(const WriteQueue&) = delete;
    WriteQueue& operator=(const WriteQueue&) = delete;
    ~WriteQueue() { clear(); }

    void push(base::BufferRef frame);

    [[nodiscard]] bool empty() const noexcept { return head_ == frames_.size(); }
    // Bytes not yet written, the rest of a partly written frame included.
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    [[nodiscard]] std::size_t frames() const noexcept { return frames_.size() - head_; }
    // Unwritten bytes of the oldest frame (0 when empty).
    [[nodiscard]] std::size_t front_bytes() const noexcept {
        return empty() ? 0 : frames_[head_].size() - offset_;
    }

    // Points `out` at up to out.size() unwritten pieces, oldest first; returns how many.
    [[nodiscard]] std::size_t gather(std::span<boost::asio::const_buffer> out) const noexcept;

    // Marks the first `n` unwritten bytes as written (n <= bytes()); calls `done(frame)`,
    // oldest first, with each frame that is now written whole, before letting it go.
    template <typename Fn> void consume(std::size_t n, Fn&& done);
    void consume(std::size_t n) {
        consume(n, [](const base::BufferRef&) {});
    }

    // Drops everything unwritten.
    void clear() noexcept;

private:
    void release(std::size_t n) noexcept;
    void compact();

    std::vector<base::BufferRef> frames_;
    std::size_t head_ = 0;   // the oldest unwritten frame
    std::size_t offset_ = 0; // bytes of frames_[head_] already written
    std::size_t bytes_ = 0;
    WorkerStats::Counter* gauge_ = nullptr;
};

template <typename Fn> void WriteQueue::consume(std::size_t n, Fn&& done) {
    release(n);
    while (n > 0) {
        base::BufferRef& frame = frames_[head_];
        const std::size_t left = frame.size() - offset_;
        if (n < left) {
            offset_ += n;
            return;
        }
        n -= left;
        offset_ = 0;
        done(frame);
        frame = base::BufferRef();
        ++head_;
    }
    compact();
}

} // namespace herald::net
