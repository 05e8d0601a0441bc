// Event construction: the one place an SSE frame is encoded for a published event.
#include "log/event.hpp"

#include <algorithm>

#include "sse/frame.hpp"

namespace herald::log {

EventPtr make_event(NewEvent&& in, std::uint64_t position, std::string id,
                    std::int64_t published_ms) {
    auto ev = std::make_shared<Event>();
    ev->position = position;
    ev->id = std::move(id);
    ev->topics = std::move(in.topics);
    // A topic named twice is one topic: it takes one place in that topic's history.
    auto& topics = ev->topics;
    for (auto it = topics.begin(); it != topics.end();) {
        it = std::find(topics.begin(), it, *it) != it ? topics.erase(it) : std::next(it);
    }
    ev->type = std::move(in.type);
    ev->data = std::move(in.data);
    ev->is_private = in.is_private;
    ev->retry_ms = in.retry_ms;
    ev->published_ms = published_ms;
    std::string frame;
    frame.reserve(ev->data.size() + ev->id.size() + ev->type.size() + 32);
    sse::encode_event(frame, ev->id, ev->type, ev->data, ev->retry_ms);
    ev->frame = base::BufferRef::copy_of(frame);
    return ev;
}

} // namespace herald::log
