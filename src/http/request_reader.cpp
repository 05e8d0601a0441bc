// Reading one HTTP/1.1 request: Beast's parser fed piece by piece, the header checked before
// any body byte is read (smuggling shapes, Host, Expect), then the Request built from it.
#include "http/request_reader.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/form.hpp"

namespace herald::http {

namespace beast = boost::beast;
using boost::system::error_code;

namespace {

std::string lower_trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// The transfer codings of every Transfer-Encoding field, in order.
template <typename Fields> std::vector<std::string> transfer_codings(const Fields& fields) {
    std::vector<std::string> codings;
    for (auto [it, end] = fields.equal_range(beast::http::field::transfer_encoding); it != end;
         ++it) {
        std::string_view value = it->value();
        while (!value.empty()) {
            const auto comma = value.find(',');
            std::string coding = lower_trimmed(value.substr(0, comma));
            // A coding's parameters (";q=...") do not change which coding it is.
            if (auto semi = coding.find(';'); semi != std::string::npos) {
                coding = lower_trimmed(coding.substr(0, semi));
            }
            if (!coding.empty()) {
                codings.push_back(std::move(coding));
            }
            if (comma == std::string_view::npos) {
                break;
            }
            value.remove_prefix(comma + 1);
        }
    }
    return codings;
}

template <typename Fields>
std::vector<std::string_view> values_of(const Fields& fields, std::string_view name) {
    std::vector<std::string_view> values;
    for (auto [it, end] = fields.equal_range(name); it != end; ++it) {
        values.push_back(it->value());
    }
    return values;
}

} // namespace

struct RequestReader::Parser {
    std::optional<beast::http::request_parser<beast::http::string_body>> beast;
};

RequestReader::RequestReader() : parser_(std::make_unique<Parser>()) {}

RequestReader::~RequestReader() = default;

void RequestReader::start(std::size_t body_limit) {
    auto& parser = parser_->beast.emplace();
    parser.header_limit(kHeaderLimit);
    parser.body_limit(body_limit);
    parser.eager(false); // stop after the header section: it is checked before the body
    body_limit_ = body_limit;
    consumed_ = 0;
    header_checked_ = false;
    refused_.reset();
    detail_.clear();
}

bool RequestReader::feed(std::string_view bytes, const std::function<bool()>& send_continue) {
    auto& parser = *parser_->beast;
    if (!pending_.empty()) {
        pending_.append(bytes);
        bytes = pending_;
    }
    std::size_t consumed = 0;
    error_code ec;
    while (!parser.is_done()) {
        const std::size_t used =
            parser.put(boost::asio::buffer(bytes.data() + consumed, bytes.size() - consumed), ec);
        // Beast may take bytes (a whole start line, whole chunks) and still ask for more:
        // what it took is gone from the input either way.
        consumed += used;
        consumed_ += used;
        if (ec == beast::http::error::need_more) {
            ec = {};
            break;
        }
        if (ec) {
            break;
        }
        if (parser.is_header_done() && !header_checked_) {
            header_checked_ = true;
            if (!check_header(send_continue)) {
                break;
            }
        }
        if (used == 0 || consumed == bytes.size()) {
            break;
        }
    }
    if (bytes.data() == pending_.data()) {
        pending_.erase(0, consumed);
    } else {
        pending_.assign(bytes.substr(consumed));
    }
    // Beast holds only the bytes it has not consumed yet to its header limit: fields taken
    // from an earlier read escape it, so a header cut into reads could grow to twice the
    // limit, and one read held the fields alone to it. The limit is kept here instead, on the
    // whole header section, however it arrives: a header not done by kHeaderLimit bytes is
    // over it (check_header() takes the header that ends past it).
    if (!ec && !refused_ && !parser.is_header_done() &&
        consumed_ + pending_.size() >= kHeaderLimit) {
        ec = beast::http::error::header_limit;
    }
    if (ec && !refused_) {
        if (ec == beast::http::error::header_limit) {
            // 414 when the request line did not end within the limit, 431 when the fields
            // passed it; told from the bytes, not from what Beast happened to consume.
            const bool line_ended =
                consumed_ > 0 || std::string_view(pending_).substr(0, kHeaderLimit).find('\n') !=
                                     std::string_view::npos;
            refused_ = line_ended ? HttpError::header_too_large : HttpError::uri_too_long;
        } else if (ec == beast::http::error::body_limit) {
            refused_ = HttpError::body_too_large;
            detail_ = std::to_string(body_limit_) + " bytes";
        } else {
            refused_ = HttpError::malformed;
            detail_ = ec.message();
        }
    }
    return refused_.has_value() || parser.is_done();
}

bool RequestReader::check_header(const std::function<bool()>& send_continue) {
    const auto& parser = *parser_->beast;
    const auto& msg = parser.get();
    auto refuse_with = [this](HttpError e) {
        refused_ = e;
        return false;
    };
    // The whole header section, request line to blank line, is what the parser has taken.
    if (consumed_ > kHeaderLimit) {
        return refuse_with(HttpError::header_too_large);
    }
    if (msg.version() >= 11 && msg.count(beast::http::field::host) != 1) {
        return refuse_with(HttpError::missing_host);
    }
    if (msg.count(beast::http::field::transfer_encoding) > 0) {
        // RFC 9112 6.1: a body's length is known only from a final chunked coding; read any
        // other way, what follows would be taken for the next request (smuggling).
        if (msg.count(beast::http::field::content_length) > 0) {
            return refuse_with(HttpError::length_and_transfer);
        }
        if (msg.version() < 11) {
            return refuse_with(HttpError::transfer_not_chunked);
        }
        const auto codings = transfer_codings(msg);
        if (codings.empty() || codings.back() != "chunked" ||
            std::count(codings.begin(), codings.end(), "chunked") != 1) {
            return refuse_with(HttpError::transfer_not_chunked);
        }
        if (codings.size() > 1) {
            return refuse_with(HttpError::transfer_coding_unknown);
        }
    }
    if (auto it = msg.find(beast::http::field::expect); it != msg.end()) {
        if (lower_trimmed(it->value()) != "100-continue" ||
            msg.count(beast::http::field::expect) != 1) {
            return refuse_with(HttpError::expectation_unsupported);
        }
        // The client waits for the interim answer before it sends the body.
        if (msg.version() >= 11 && !parser.is_done() && !send_continue()) {
            return refuse_with(HttpError::malformed); // cannot answer as asked
        }
    }
    return true;
}

std::variant<Request, HttpError> RequestReader::take_request() {
    auto& msg = parser_->beast->get();
    Request request;
    request.method = std::string(msg.method_string());
    request.target = std::string(msg.target());
    // RFC 9112 3.2.2: a server accepts the absolute form (what a proxy would send); the
    // authority in it is not used, the path and query are.
    for (std::string_view scheme : {"http://", "https://"}) {
        const std::string_view t = request.target;
        if (t.size() > scheme.size() &&
            std::equal(scheme.begin(), scheme.end(), t.begin(), [](char a, char b) {
                return a == std::tolower(static_cast<unsigned char>(b));
            })) {
            const auto slash = t.find_first_of("/?", scheme.size());
            request.target = slash == std::string_view::npos ? std::string("/")
                             : t[slash] == '?'               ? "/" + std::string(t.substr(slash))
                                                             : std::string(t.substr(slash));
            break;
        }
    }
    if (request.target.empty() || request.target.front() != '/') {
        return HttpError::bad_target;
    }
    const auto question = request.target.find('?');
    request.path = decode_path(std::string_view(request.target).substr(0, question));
    if (question != std::string::npos) {
        for (auto& field : decode_form(std::string_view(request.target).substr(question + 1))) {
            request.query.emplace_back(std::move(field.key), std::move(field.value));
        }
    }
    if (auto it = msg.find(beast::http::field::content_type); it != msg.end()) {
        request.content_type = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::accept); it != msg.end()) {
        request.accept = std::string(it->value());
    }
    if (auto it = msg.find("Last-Event-ID"); it != msg.end()) {
        request.last_event_id = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::authorization); it != msg.end()) {
        request.authorization = std::string(it->value());
    }
    for (auto [it, end] = msg.equal_range(beast::http::field::cookie); it != end; ++it) {
        if (request.cookie) {
            *request.cookie += "; ";
            *request.cookie += it->value();
        } else {
            request.cookie = std::string(it->value());
        }
    }
    if (auto it = msg.find(beast::http::field::origin); it != msg.end()) {
        request.origin = std::string(it->value());
    }
    if (auto it = msg.find(beast::http::field::if_none_match); it != msg.end()) {
        request.if_none_match = std::string(it->value());
    }
    request.preflight = request.method == "OPTIONS" &&
                        msg.find(beast::http::field::access_control_request_method) != msg.end();
    request.keep_alive = msg.keep_alive();
    request.body = std::move(msg.body());
    return request;
}

std::vector<std::string_view> RequestReader::forwarded() const {
    return values_of(parser_->beast->get(), "Forwarded");
}

std::vector<std::string_view> RequestReader::x_forwarded_for() const {
    return values_of(parser_->beast->get(), "X-Forwarded-For");
}

} // namespace herald::http
