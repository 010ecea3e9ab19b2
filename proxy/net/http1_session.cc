#include "proxy/net/http1_session.h"

#include <event2/buffer.h>

#include <cstring>

#include "config/log.h"
#include "proxy/net/event_loop.h"
#include "proxy/net/static_response.h"

namespace kcp::proxy {
namespace {

// Request body handed to the handler but not yet sent on: past this we stop
// reading the socket, so a fast uploader meets TCP backpressure.
constexpr size_t kMaxRequestBodyOutstanding = 1 << 20;
constexpr auto kCallback = Metrics::InternalError::kHttp1Callback;

}  // namespace

Http1Session::Http1Session(SessionHost& host, Router& router, const ClientLimits& limits,
                           bufferevent* bev, PeerInfo peer)
    : host_(host),
      router_(router),
      limits_(limits),
      bev_(bev),
      peer_(std::move(peer)),
      pump_ev_(event_new(host.base(), -1, 0, onPumpCb, this)),
      wait_timer_(evtimer_new(host.base(), onWaitTimeoutCb, this)) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = onMessageBegin;
  settings_.on_url = onUrl;
  settings_.on_header_field = onHeaderField;
  settings_.on_header_value = onHeaderValue;
  settings_.on_headers_complete = onHeadersComplete;
  settings_.on_body = onBody;
  settings_.on_message_complete = onMessageComplete;
  host_.metrics().client_connections.fetch_add(1, std::memory_order_relaxed);
}

Http1Session::~Http1Session() {
  if (handler_) {
    try {
      handler_->onDownstreamClosed();
    } catch (...) {
      reportInternalError(kCallback, "HTTP/1.1 session teardown");
    }
    handler_.reset();
  }
  bufferevent_free(bev_);
  if (pump_ev_ != nullptr) event_free(pump_ev_);
  if (wait_timer_ != nullptr) event_free(wait_timer_);
  host_.metrics().client_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Http1Session::start() {
  try {
    if (pump_ev_ == nullptr || wait_timer_ == nullptr) {
      failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 session", "event_new failed");
      return;
    }
    bufferevent_setcb(bev_, onReadCb, onWriteCb, onEventCb, this);
    bufferevent_setwatermark(bev_, EV_WRITE, kOutputHighWatermark / 2, 0);
    if (bufferevent_enable(bev_, EV_READ | EV_WRITE) != 0) {
      failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 session",
                     "bufferevent_enable failed");
      return;
    }
    awaitRequest(false);
    onRead();
  } catch (...) {
    failConnection(kCallback, "HTTP/1.1 start");
  }
}

void Http1Session::awaitRequest(bool head_started) {
  head_started_ = head_started;
  const timeval tv = timevalOf(head_started ? limits_.header_timeout : limits_.idle_timeout);
  if (evtimer_add(wait_timer_, &tv) != 0) {
    failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 idle or header timer",
                   "evtimer_add failed");
  }
}

void Http1Session::onWaitTimeoutCb(evutil_socket_t, short, void* p) noexcept {
  auto& s = self(p);
  try {
    if (s.head_started_) {
      s.host_.metrics().recordRejection("header_timeout");
      s.close("request head not complete in time");
    } else {
      s.close("idle");
    }
  } catch (...) {
    s.failConnection(kCallback, "HTTP/1.1 idle or header timeout");
  }
}

void Http1Session::failConnection(Metrics::InternalError where, const char* context,
                                  const char* detail) noexcept {
  reportInternalError(where, context, detail != nullptr ? detail : "");
  closeAfterFailure("internal error");
}

void Http1Session::closeAfterFailure(const char* why) noexcept {
  keep_alive_ = false;
  try {
    close(why);
  } catch (...) {
    // close() marks the session closing before anything that can throw (its
    // log line): callbacks do nothing from here; still hand it back.
    try {
      host_.release(this);
    } catch (...) {
    }
  }
}

int Http1Session::parserFailed(const char* callback) noexcept {
  reportInternalError(kCallback, callback);
  internal_error_ = true;
  return -1;  // an error for every callback (on_headers_complete takes 1 and 2 as "no body")
}

// libevent callbacks: an exception ends the connection.
void Http1Session::onReadCb(bufferevent*, void* p) noexcept {
  try {
    self(p).onRead();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/1.1 read");
  }
}

void Http1Session::onWriteCb(bufferevent*, void* p) noexcept {
  try {
    self(p).onWrite();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/1.1 write");
  }
}

void Http1Session::onPumpCb(evutil_socket_t, short, void* p) noexcept {
  try {
    self(p).pump();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/1.1 response");
  }
}

void Http1Session::drain() {
  draining_ = true;
  keep_alive_ = false;
  if (!handler_ && !closing_) close("draining");
}

void Http1Session::close(const char* why) {
  if (closing_) return;
  closing_ = true;  // first: see closeAfterFailure
  log::verbose(2, "client connection closed", {{"client", peer_.address}, {"reason", why}});
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  if (wait_timer_ != nullptr) evtimer_del(wait_timer_);
  host_.release(this);
}

void Http1Session::onEventCb(bufferevent*, short what, void* p) noexcept {
  try {
    self(p).close(clientEventReason(what));
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/1.1 connection event");
  }
}

void Http1Session::resetRequestState() {
  head_ = RequestHead{};
  header_name_.clear();
  last_was_value_ = false;
  header_bytes_ = header_count_ = 0;
  too_large_ = false;
  internal_error_ = false;
  request_complete_ = false;
  request_body_outstanding_ = 0;
  request_body_bytes_ = 0;
  body_too_large_ = false;
  head_request_ = false;
  response_started_ = chunked_ = response_complete_ = false;
  body_allowed_ = true;
}

void Http1Session::onRead() {
  if (closing_) return;
  evbuffer* in = bufferevent_get_input(bev_);
  while (evbuffer_get_length(in) > 0 && !closing_) {
    // One request at a time: the next waits until this response is done, and
    // a request body waits while the handler holds too much of it.
    if (handler_ &&
        (request_complete_ || request_body_outstanding_ >= kMaxRequestBodyOutstanding)) {
      bufferevent_disable(bev_, EV_READ);
      return;
    }
    if (tunnel_) {  // upgraded: client bytes go to the handler as they are
      evbuffer_iovec v;
      if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
      request_body_outstanding_ += v.iov_len;
      handler_->onRequestBody(static_cast<const uint8_t*>(v.iov_base), v.iov_len);
      evbuffer_drain(in, v.iov_len);
      continue;
    }
    evbuffer_iovec v;
    if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
    const size_t n =
        http_parser_execute(&parser_, &settings_, static_cast<const char*>(v.iov_base), v.iov_len);
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (internal_error_) {  // reported by the callback that failed
      closeAfterFailure("internal error");
      return;
    }
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      evbuffer_drain(in, n);
      continue;
    }
    if (err != HPE_OK) {
      evbuffer_drain(in, evbuffer_get_length(in));
      if (too_large_ || err == HPE_HEADER_OVERFLOW) {
        host_.metrics().recordRejection("header_bytes");
        fail(431, "RequestHeaderFieldsTooLarge", "request headers too large");
      } else if (body_too_large_) {
        host_.metrics().recordRejection("request_body_bytes");
        const encoder::Status status = requestEntityTooLarge(limits_.max_request_body_bytes);
        fail(status.code, status.reason.c_str(), status.message);
      } else if (response_started_) {
        close("bad request after the response started");
      } else if (!bad_request_.empty()) {
        fail(400, "BadRequest", bad_request_);
      } else {
        fail(400, "BadRequest",
             std::string("malformed HTTP/1.1 request: ") + http_errno_description(err));
      }
      return;
    }
    evbuffer_drain(in, n);
  }
}

void Http1Session::fail(int code, const char* reason, const std::string& message) {
  keep_alive_ = false;
  if (response_started_) {  // too late for an error response
    close(reason);
    return;
  }
  if (handler_) handler_->onDownstreamClosed();
  request_complete_ = true;
  handler_ = StaticResponse::sendStatus(*this, {code, reason, message, {}});
}

bool Http1Session::countHeaderBytes(size_t len) {
  header_bytes_ += int64_t(len);
  if (header_bytes_ > limits_.max_header_bytes) too_large_ = true;
  return !too_large_;
}

// http_parser callbacks: an exception ends the parse, then the connection.
int Http1Session::onMessageBegin(http_parser* p) noexcept {
  auto& s = self(p);
  try {
    s.resetRequestState();
    s.awaitRequest(true);
  } catch (...) {
    return s.parserFailed("HTTP/1.1 onMessageBegin");
  }
  return 0;
}

int Http1Session::onUrl(http_parser* p, const char* at, size_t len) noexcept {
  auto& s = self(p);
  if (!s.countHeaderBytes(len)) return 1;
  try {
    s.head_.path.append(at, len);
  } catch (...) {
    return s.parserFailed("HTTP/1.1 onUrl");
  }
  return 0;
}

int Http1Session::onHeaderField(http_parser* p, const char* at, size_t len) noexcept {
  auto& s = self(p);
  if (!s.countHeaderBytes(len)) return 1;
  try {
    if (s.last_was_value_ || s.head_.headers.empty()) {
      if (++s.header_count_ > s.limits_.max_header_count) {
        s.too_large_ = true;
        return 1;
      }
      s.head_.headers.push_back({});
      s.last_was_value_ = false;
    }
    s.head_.headers.back().name += toLower(std::string_view(at, len));
  } catch (...) {
    return s.parserFailed("HTTP/1.1 onHeaderField");
  }
  return 0;
}

int Http1Session::onHeaderValue(http_parser* p, const char* at, size_t len) noexcept {
  auto& s = self(p);
  if (!s.countHeaderBytes(len)) return 1;
  if (s.head_.headers.empty()) return 1;
  try {
    s.head_.headers.back().value.append(at, len);
  } catch (...) {
    return s.parserFailed("HTTP/1.1 onHeaderValue");
  }
  s.last_was_value_ = true;
  return 0;
}

int Http1Session::onHeadersComplete(http_parser* p) noexcept {
  auto& s = self(p);
  try {
    evtimer_del(s.wait_timer_);  // the handler's exchange takes as long as it takes (watches)
    RequestHead& h = s.head_;
    h.method = http_method_str(static_cast<http_method>(p->method));
    h.scheme = s.peer_.tls ? "https" : "http";
    // Host becomes :authority; headers named in Connection are hop-by-hop too.
    std::vector<std::string> connection_tokens;
    for (const auto& hd : h.headers) {
      if (hd.name == "host") h.authority = hd.value;
      if (hd.name == "connection") {
        size_t start = 0;
        while (start <= hd.value.size()) {
          size_t comma = hd.value.find(',', start);
          std::string token = hd.value.substr(
              start, comma == std::string::npos ? std::string::npos : comma - start);
          token.erase(0, token.find_first_not_of(" \t"));
          token.erase(token.find_last_not_of(" \t") + 1);
          if (!token.empty()) connection_tokens.push_back(toLower(token));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
    if (p->upgrade && p->method != HTTP_CONNECT) {
      if (const std::string* up = h.header("upgrade")) h.upgrade = *up;
    }
    std::erase_if(h.headers, [&](const Header& hd) {
      if (isHopByHop(hd.name)) return true;
      for (const auto& t : connection_tokens) {
        if (hd.name == t) return true;
      }
      return false;
    });
    const bool chunked = p->flags & F_CHUNKED;
    const bool has_length = p->content_length != ULLONG_MAX && p->content_length > 0;
    if (has_length) h.content_length = int64_t(p->content_length);
    h.end_stream = !chunked && !has_length;
    s.keep_alive_ = http_should_keep_alive(p) && !s.draining_;
    s.head_request_ = p->method == HTTP_HEAD;
    // (http_parser takes 1 for "no body", not as an error: -1 it is.)
    if (p->upgrade && h.upgrade.empty()) {
      s.bad_request_ = "CONNECT is not for a reverse proxy";
      return -1;
    }
    if (h.path.empty() || h.path[0] != '/') {
      s.too_large_ = false;
      s.bad_request_ = "the request target must be a path (origin-form)";
      return -1;
    }
    if (h.content_length > s.limits_.max_request_body_bytes) {
      s.host_.metrics().recordRejection("request_body_bytes");
      s.keep_alive_ = false;  // the body is not read: the connection ends with the answer
      s.handler_ =
          StaticResponse::sendStatus(s, requestEntityTooLarge(s.limits_.max_request_body_bytes));
      return 0;
    }
    s.handler_ = s.router_.route(h, s);
    if (!h.upgrade.empty()) {
      s.tunnel_ = true;
      s.keep_alive_ = false;
      return 0;
    }
    if (s.handler_ && h.end_stream) {
      s.request_complete_ = true;
      s.handler_->onRequestComplete();
    }
    return 0;
  } catch (...) {
    // E.g. the router or a handler's constructor failed.
    return s.parserFailed("HTTP/1.1 onHeadersComplete");
  }
}

int Http1Session::onBody(http_parser* p, const char* at, size_t len) noexcept {
  auto& s = self(p);
  if (!s.handler_) return 0;
  if ((s.request_body_bytes_ += int64_t(len)) > s.limits_.max_request_body_bytes) {
    s.body_too_large_ = true;  // a chunked body past the limit
    return 1;
  }
  s.request_body_outstanding_ += len;
  try {
    s.handler_->onRequestBody(reinterpret_cast<const uint8_t*>(at), len);
  } catch (...) {
    return s.parserFailed("HTTP/1.1 onBody");
  }
  return 0;
}

int Http1Session::onMessageComplete(http_parser* p) noexcept {
  auto& s = self(p);
  if (p->upgrade) return 0;
  if (s.handler_ && !s.request_complete_) {
    s.request_complete_ = true;
    try {
      s.handler_->onRequestComplete();
    } catch (...) {
      return s.parserFailed("HTTP/1.1 onMessageComplete");
    }
  }
  // Stop here: a pipelined request is parsed once this response is done.
  http_parser_pause(p, 1);
  return 0;
}

void Http1Session::submitResponse(const ResponseHead& head, bool end_stream) {
  if (response_started_ || closing_) return;
  response_started_ = true;
  if (head.raw) {  // an upgrade's upstream bytes, head included
    raw_response_ = true;
    event_active(pump_ev_, 0, 0);
    return;
  }
  const int code = head.status;
  body_allowed_ = !head_request_ && code >= 200 && code != 204 && code != 304;
  evbuffer* out = bufferevent_get_output(bev_);
  bool ok = true;  // every evbuffer_add took its bytes
  const auto add = [&](std::string_view bytes) {
    ok = ok && evbuffer_add(out, bytes.data(), bytes.size()) == 0;
  };
  ok = evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, reasonPhrase(code)) >= 0;
  bool has_length = false;
  for (const auto& h : head.headers) {
    if (h.name == "content-length") has_length = true;
    if (isHopByHop(h.name)) continue;
    add(h.name);
    add(": ");
    add(h.value);
    add("\r\n");
  }
  if (!has_length && head.content_length >= 0) {
    ok = ok && evbuffer_add_printf(out, "content-length: %lld\r\n",
                                   static_cast<long long>(head.content_length)) >= 0;
    has_length = true;
  }
  if (body_allowed_ && !has_length) {
    if (end_stream) {
      add("content-length: 0\r\n");
    } else {
      chunked_ = true;
      add("transfer-encoding: chunked\r\n");
    }
  }
  if (!keep_alive_) add("connection: close\r\n");
  add("\r\n");
  if (!ok) {  // a response head with a hole in it must not go out
    failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 response head",
                   "evbuffer_add failed");
    return;
  }
  if (end_stream) response_complete_ = true;
  event_active(pump_ev_, 0, 0);
}

void Http1Session::resumeResponse() {
  if (!closing_) event_active(pump_ev_, 0, 0);
}

void Http1Session::consumedRequestBody(size_t n) {
  request_body_outstanding_ -= std::min(n, request_body_outstanding_);
  if (!closing_ && request_body_outstanding_ < kMaxRequestBodyOutstanding && !request_complete_) {
    if (bufferevent_enable(bev_, EV_READ) != 0) {
      failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 request body",
                     "bufferevent_enable failed");
      return;
    }
    event_active(pump_ev_, 0, 0);  // parse what is already buffered
  }
}

void Http1Session::resetStream() {
  // A response cut short can only be signalled by closing the connection.
  close("response aborted");
}

void Http1Session::onWrite() {
  if (close_after_write_ && evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    close("response done, connection not kept alive");
    return;
  }
  pump();
}

void Http1Session::pump() {
  if (closing_) return;
  if (!handler_) {
    onRead();
    return;
  }
  if (!response_started_) {
    // Parsing may have stopped for request-body backpressure.
    if (!request_complete_) onRead();
    return;
  }
  evbuffer* out = bufferevent_get_output(bev_);
  const auto framing_failed = [this] {
    // A chunk without its framing would corrupt the rest of the response.
    failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 chunked response",
                   "evbuffer_add failed");
  };
  while (!response_complete_ && evbuffer_get_length(out) < kOutputHighWatermark) {
    bool eof = false;
    size_t ready = handler_->responseBodyReady(&eof);
    if (ready > 0) {
      if (!body_allowed_) {  // HEAD: discard what upstream may still send
        const std::unique_ptr<evbuffer, decltype(&evbuffer_free)> sink(evbuffer_new(),
                                                                       &evbuffer_free);
        if (!sink) {
          failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 HEAD response",
                         "evbuffer_new failed");
          return;
        }
        handler_->pullResponseBody(sink.get(), ready);
        continue;
      }
      ready = std::min(ready, kOutputHighWatermark);
      if (raw_response_) {
        handler_->pullResponseBody(out, ready);
        continue;
      }
      if (chunked_ && evbuffer_add_printf(out, "%zx\r\n", ready) < 0) {
        framing_failed();
        return;
      }
      handler_->pullResponseBody(out, ready);
      if (chunked_ && evbuffer_add(out, "\r\n", 2) != 0) {
        framing_failed();
        return;
      }
      continue;
    }
    if (!eof) return;  // resumeResponse will bring us back
    if (chunked_ && !raw_response_ && evbuffer_add(out, "0\r\n\r\n", 5) != 0) {
      framing_failed();
      return;
    }
    response_complete_ = true;
  }
  if (response_complete_) finishExchange();
}

void Http1Session::finishExchange() {
  // A request body the handler never read (e.g. an error answered early)
  // leaves the parser mid-message: the connection cannot be reused.
  if (!request_complete_) keep_alive_ = false;
  handler_.reset();
  if (!keep_alive_) {
    close_after_write_ = true;
    bufferevent_disable(bev_, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0)
      close("response done, connection not kept alive");
    return;
  }
  resetRequestState();
  awaitRequest(false);
  if (bufferevent_enable(bev_, EV_READ) != 0) {
    failConnection(Metrics::InternalError::kLibevent, "HTTP/1.1 keep-alive",
                   "bufferevent_enable failed");
    return;
  }
  onRead();  // a pipelined request may be waiting
}

}  // namespace kcp::proxy
