#include "proxy/net/http2_session.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "config/log.h"
#include "proxy/net/event_loop.h"
#include "proxy/net/nghttp2_io.h"
#include "proxy/net/static_response.h"

namespace kcp::proxy {
namespace {

constexpr int32_t kStreamWindow = 1 << 20;  // request bodies buffered per stream at most
constexpr int32_t kConnectionWindow = 16 << 20;
constexpr auto kCallback = Metrics::InternalError::kHttp2Callback;

}  // namespace

// One request/response exchange on the connection.
class Http2Session::Stream : public DownstreamStream {
 public:
  Stream(Http2Session& session, int32_t id) : session_(session), id_(id) {}

  void submitResponse(const ResponseHead& head, bool end_stream) override {
    if (response_submitted_) return;
    response_submitted_ = true;
    const std::string status = std::to_string(head.status);
    static const std::string kStatus = ":status";
    std::vector<nghttp2_nv> nva;
    nva.reserve(head.headers.size() + 1);
    nva.push_back(headerEntry(kStatus, status));
    for (const auto& h : head.headers) nva.push_back(headerEntry(h.name, h.value));
    nghttp2_data_provider body{};
    body.read_callback = onReadResponseBody;
    const int rv = nghttp2_submit_response(session_.session_, id_, nva.data(), nva.size(),
                                           end_stream ? nullptr : &body);
    if (rv != 0) session_.nghttp2Failed("nghttp2_submit_response", rv, id_);
    session_.scheduleFlush();
  }
  void resumeResponse() override {
    if (!response_submitted_) return;
    // INVALID_ARGUMENT: nothing deferred on the stream (or it is gone), so nothing to resume.
    const int rv = nghttp2_session_resume_data(session_.session_, id_);
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT)
      session_.nghttp2Failed("nghttp2_session_resume_data", rv, id_);
    session_.scheduleFlush();
  }
  void consumedRequestBody(size_t n) override {
    session_.consume(id_, n);
    session_.scheduleFlush();
  }
  void resetStream() override { session_.submitReset(id_, NGHTTP2_INTERNAL_ERROR); }
  const PeerInfo& peer() const override { return session_.peer_; }

  Http2Session& session_;
  int32_t id_;
  RequestHead head_;
  RequestHandlerPtr handler_;
  int64_t header_bytes_ = 0;
  int64_t header_count_ = 0;
  int64_t body_bytes_ = 0;
  std::chrono::steady_clock::time_point began_ = std::chrono::steady_clock::now();
  bool head_complete_ = false;
  bool headers_too_large_ = false;
  bool body_too_large_ = false;
  bool bad_request_ = false;
  bool response_submitted_ = false;
  bool reset_ = false;  // failed internally and reset: the handler gets nothing more
};

Http2Session::Http2Session(SessionHost& host, Router& router, const ClientLimits& limits,
                           bufferevent* bev, PeerInfo peer)
    : host_(host),
      router_(router),
      limits_(limits),
      bev_(bev),
      peer_(std::move(peer)),
      flush_ev_(event_new(host.base(), -1, 0, onFlushCb, this)),
      data_payload_(evbuffer_new()),
      idle_timer_(evtimer_new(host.base(), onIdleCb, this)),
      header_timer_(evtimer_new(host.base(), onHeaderTimeoutCb, this)) {
  host_.metrics().client_connections.fetch_add(1, std::memory_order_relaxed);
}

void Http2Session::armIdle() {
  const timeval tv = timevalOf(limits_.idle_timeout);
  if (evtimer_add(idle_timer_, &tv) != 0) {
    failConnection(Metrics::InternalError::kLibevent, "HTTP/2 idle timer", "evtimer_add failed");
  }
}

void Http2Session::onIdleCb(evutil_socket_t, short, void* p) noexcept {
  // No stream for the idle timeout: GOAWAY, as Go's http2 server does.
  try {
    self(p).drain();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/2 idle timeout");
  }
}

void Http2Session::armHeaderTimer() {
  if (evtimer_pending(header_timer_, nullptr)) return;
  const timeval tv = timevalOf(limits_.header_timeout);
  if (evtimer_add(header_timer_, &tv) != 0) {
    failConnection(Metrics::InternalError::kLibevent, "HTTP/2 header timer", "evtimer_add failed");
  }
}

void Http2Session::onHeaderTimeoutCb(evutil_socket_t, short, void* p) noexcept {
  auto& s = self(p);
  if (s.closing_) return;
  try {
    const auto now = std::chrono::steady_clock::now();
    bool waiting = false;
    for (const auto& [id, st] : s.streams_) {
      if (st->head_complete_) continue;
      if (now - st->began_ >= s.limits_.header_timeout) {
        s.host_.metrics().recordRejection("header_timeout");
        s.terminate(NGHTTP2_ENHANCE_YOUR_CALM,
                    "request head not complete within the header timeout");
        return;
      }
      waiting = true;
    }
    if (waiting) s.armHeaderTimer();
  } catch (...) {
    s.failConnection(kCallback, "HTTP/2 header timeout");
  }
}

void Http2Session::terminate(uint32_t error_code, const char* why) {
  log::verbose(1, "closing an HTTP/2 client connection",
               {{"client", peer_.address}, {"reason", why}});
  terminated_by_us_ = true;
  if (const int rv = nghttp2_session_terminate_session(session_, error_code); rv != 0) {
    nghttp2Failed("nghttp2_session_terminate_session", rv);
    return;
  }
  scheduleFlush();
}

void Http2Session::closeAfterFailure(const char* why) noexcept {
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

void Http2Session::failConnection(Metrics::InternalError where, const char* context,
                                  const char* detail) noexcept {
  reportInternalError(where, context, detail != nullptr ? detail : "");
  closeAfterFailure("internal error");
}

void Http2Session::nghttp2Failed(const char* call, int rv, int32_t stream_id) noexcept {
  reportInternalError(Metrics::InternalError::kNghttp2, call, nghttp2_strerror(rv));
  if (stream_id != 0 && !nghttp2_is_fatal(rv)) {
    submitReset(stream_id, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  closeAfterFailure("nghttp2 failed");
}

void Http2Session::submitReset(int32_t id, uint32_t error_code) noexcept {
  if (const int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
      rv != 0) {
    nghttp2Failed("nghttp2_submit_rst_stream", rv);  // no stream id: the connection ends
    return;
  }
  scheduleFlush();
}

void Http2Session::resetAfterError(Stream& stream) noexcept {
  stream.reset_ = true;
  submitReset(stream.id_, NGHTTP2_INTERNAL_ERROR);
}

void Http2Session::consume(int32_t id, size_t n) noexcept {
  if (const int rv = nghttp2_session_consume(session_, id, n); rv != 0) {
    nghttp2Failed("nghttp2_session_consume", rv, id);
  }
}

int Http2Session::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept {
  auto& s = self(p);
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
      !s.terminated_by_us_) {
    // nghttp2 itself ended the session: a flood it guards against (rapid
    // resets, or too many SETTINGS, PINGs or CONTINUATIONs).
    try {
      s.host_.metrics().recordRejection("http2_flood");
      log::verbose(1, "HTTP/2 client flooded the connection",
                   {{"client", s.peer_.address},
                    {"error", nghttp2_http2_strerror(frame->goaway.error_code)}});
    } catch (...) {
      reportInternalError(kCallback, "HTTP/2 onFrameSend");  // only accounting was lost
    }
  }
  return 0;
}

Http2Session::~Http2Session() {
  // Handlers go first: their destructors may still call their stream.
  for (auto& [id, s] : streams_) {
    if (!s->handler_) continue;
    try {
      s->handler_->onDownstreamClosed();
    } catch (...) {
      reportInternalError(kCallback, "HTTP/2 session teardown");
    }
  }
  streams_.clear();
  if (session_ != nullptr) nghttp2_session_del(session_);
  bufferevent_free(bev_);
  if (flush_ev_ != nullptr) event_free(flush_ev_);
  if (data_payload_ != nullptr) evbuffer_free(data_payload_);
  if (idle_timer_ != nullptr) event_free(idle_timer_);
  if (header_timer_ != nullptr) event_free(header_timer_);
  host_.metrics().client_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Http2Session::start() {
  try {
    if (flush_ev_ == nullptr || data_payload_ == nullptr || idle_timer_ == nullptr ||
        header_timer_ == nullptr) {
      failConnection(Metrics::InternalError::kLibevent, "HTTP/2 session",
                     "event_new or evbuffer_new failed");
      return;
    }
    const int rv = newSession(
        &session_, true, this,
        [](nghttp2_session_callbacks* cbs) {
          nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, onBeginHeaders);
          nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
          nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv);
          nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onDataChunk);
          nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onStreamClose);
          nghttp2_session_callbacks_set_send_data_callback(cbs, onSendData);
          nghttp2_session_callbacks_set_on_frame_send_callback(cbs, onFrameSend);
        },
        [this](nghttp2_option* opt) {
          nghttp2_option_set_stream_reset_rate_limit(opt, limits_.http2_reset_burst,
                                                     limits_.http2_resets_per_second);
          nghttp2_option_set_max_continuations(opt, limits_.http2_max_continuations);
        });
    if (rv != 0) {
      nghttp2Failed("nghttp2 session creation", rv);
      return;
    }
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, uint32_t(kStreamWindow)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, uint32_t(limits_.max_header_bytes)},
    };
    if (const int rv =
            nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
        rv != 0) {
      nghttp2Failed("nghttp2_submit_settings", rv);
      return;
    }
    if (const int rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                                             kConnectionWindow);
        rv != 0) {
      nghttp2Failed("nghttp2_session_set_local_window_size", rv);
      return;
    }
    bufferevent_setcb(bev_, onReadCb, onWriteCb, onEventCb, this);
    bufferevent_setwatermark(bev_, EV_WRITE, kOutputHighWatermark / 2, 0);
    if (bufferevent_enable(bev_, EV_READ | EV_WRITE) != 0) {
      failConnection(Metrics::InternalError::kLibevent, "HTTP/2 session",
                     "bufferevent_enable failed");
      return;
    }
    armIdle();
    onRead();
  } catch (...) {
    failConnection(kCallback, "HTTP/2 start");
  }
}

void Http2Session::drain() {
  if (closing_ || session_ == nullptr) return;
  if (const int rv = nghttp2_submit_shutdown_notice(session_); rv != 0) {
    nghttp2Failed("nghttp2_submit_shutdown_notice", rv);
    return;
  }
  if (const int rv = nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                                           nghttp2_session_get_last_proc_stream_id(session_),
                                           NGHTTP2_NO_ERROR, nullptr, 0);
      rv != 0) {
    nghttp2Failed("nghttp2_submit_goaway", rv);
    return;
  }
  scheduleFlush();
}

void Http2Session::close(const char* why) {
  if (closing_) return;
  closing_ = true;  // first: see failConnection
  log::verbose(2, "client connection closed", {{"client", peer_.address}, {"reason", why}});
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  if (idle_timer_ != nullptr) evtimer_del(idle_timer_);
  if (header_timer_ != nullptr) evtimer_del(header_timer_);
  host_.release(this);
}

Http2Session::Stream* Http2Session::streamOf(int32_t id) {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Session::scheduleFlush() {
  if (!closing_) event_active(flush_ev_, 0, 0);
}

// libevent callbacks: an exception ends the connection.
void Http2Session::onReadCb(bufferevent*, void* p) noexcept {
  try {
    self(p).onRead();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/2 read");
  }
}

void Http2Session::onWriteCb(bufferevent*, void* p) noexcept {
  try {
    self(p).onWrite();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/2 write");
  }
}

void Http2Session::onFlushCb(evutil_socket_t, short, void* p) noexcept {
  try {
    self(p).flush();
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/2 flush");
  }
}

void Http2Session::onEventCb(bufferevent*, short what, void* p) noexcept {
  try {
    self(p).close(clientEventReason(what));
  } catch (...) {
    self(p).failConnection(kCallback, "HTTP/2 connection event");
  }
}

void Http2Session::onRead() {
  if (closing_ || finishing_) return;
  evbuffer* in = bufferevent_get_input(bev_);
  if (const ssize_t err = receiveInto(session_, in, [this] { return closing_; }); err < 0) {
    const bool ours = internalFailure(err);  // else the client's protocol error
    if (!ours) {
      log::verbose(1, "HTTP/2 protocol error from client",
                   {{"client", peer_.address}, {"error", nghttp2_strerror(int(err))}});
      if (err == NGHTTP2_ERR_FLOODED || err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        host_.metrics().recordRejection("http2_flood");
    }
    terminated_by_us_ = true;
    const int rv = nghttp2_session_terminate_session(
        session_, ours ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_PROTOCOL_ERROR);
    if (rv != 0) {
      nghttp2Failed("nghttp2_session_terminate_session", rv);
      return;
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_disable(bev_, EV_READ);
  }
  if (!closing_) flush();
}

void Http2Session::flush() {
  if (closing_ || session_ == nullptr) return;
  evbuffer* out = bufferevent_get_output(bev_);
  if (const ssize_t err = sendFrom(session_, out, kOutputHighWatermark); err < 0) {
    internalFailure(err);  // sending fails only on our side; this counts nghttp2's own failures
    close("send error");
    return;
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    // Done (GOAWAY exchanged, or a connection error): the last frames, e.g.
    // our GOAWAY or a PING ack, still go out before the socket closes.
    finishing_ = true;
    if (evbuffer_get_length(out) == 0) lingeringClose();
  }
}

void Http2Session::onWrite() {
  if (finishing_) {
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) lingeringClose();
    return;
  }
  flush();
}

void Http2Session::lingeringClose() {
  // Closing a socket with unread input makes the kernel send a RST, which can
  // destroy our last frames in flight. Half-close, then read and discard what
  // the peer still sends, for a moment, before closing for real.
  if (closing_) return;
  shutdown(bufferevent_getfd(bev_),
           SHUT_WR);  // may fail (the peer is gone): closing follows either way
  bufferevent_setcb(bev_, onLingerReadCb, nullptr, onEventCb, this);
  const timeval linger{1, 0};
  if (bufferevent_set_timeouts(bev_, &linger, nullptr) != 0 ||
      bufferevent_enable(bev_, EV_READ) != 0) {
    // Without its timeout the linger could last forever: close now.
    failConnection(Metrics::InternalError::kLibevent, "HTTP/2 lingering close",
                   "bufferevent_enable failed");
  }
}

void Http2Session::onLingerReadCb(bufferevent* bev, void*) noexcept {
  evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

void Http2Session::respondError(Stream& stream, int code, const char* reason,
                                const std::string& message) {
  stream.handler_ = StaticResponse::sendStatus(stream, {code, reason, message, {}});
}

// nghttp2 callbacks: an exception resets its stream (RST_STREAM
// INTERNAL_ERROR), or for what concerns no stream is only counted.
int Http2Session::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept {
  auto& s = self(p);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  try {
    auto stream = std::make_unique<Stream>(s, frame->hd.stream_id);
    s.streams_[frame->hd.stream_id] =
        std::move(stream);  // found by id (streamOf), not by nghttp2's user data
    evtimer_del(s.idle_timer_);
    s.armHeaderTimer();
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onBeginHeaders");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
  return 0;
}

int Http2Session::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* p) noexcept {
  auto& s = self(p);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  Stream* st = s.streamOf(frame->hd.stream_id);
  if (st == nullptr) return 0;
  st->header_bytes_ += int64_t(namelen + valuelen + 32);  // RFC 9113 header list size accounting
  if (++st->header_count_ > s.limits_.max_header_count ||
      st->header_bytes_ > s.limits_.max_header_bytes) {
    st->headers_too_large_ = true;
    return 0;
  }
  try {
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    RequestHead& h = st->head_;
    if (n == ":method")
      h.method = std::move(v);
    else if (n == ":path")
      h.path = std::move(v);
    else if (n == ":authority")
      h.authority = std::move(v);
    else if (n == ":scheme")
      h.scheme = std::move(v);
    else if (n.starts_with(":"))
      st->bad_request_ = true;  // nghttp2 already rejects unknown pseudo-headers
    else if (n == "host") {
      if (h.authority.empty()) h.authority = std::move(v);
    } else {
      if (n == "content-length") h.content_length = std::strtoll(v.c_str(), nullptr, 10);
      h.headers.push_back({std::string(n), std::move(v)});
    }
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onHeader");
    st->reset_ = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
  return 0;
}

int Http2Session::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept {
  auto& s = self(p);
  Stream* st = s.streamOf(frame->hd.stream_id);
  if (st == nullptr || st->reset_) return 0;
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  try {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      st->head_complete_ = true;
      if (st->headers_too_large_) {
        s.host_.metrics().recordRejection("header_bytes");
        s.respondError(*st, 431, "RequestHeaderFieldsTooLarge", "request headers too large");
        return 0;
      }
      if (st->head_.method.empty() || st->head_.path.empty() || st->bad_request_) {
        s.respondError(*st, 400, "BadRequest", "malformed request");
        return 0;
      }
      if (s.closing_) return 0;
      st->head_.end_stream = end_stream;
      if (st->head_.content_length > s.limits_.max_request_body_bytes) {
        s.host_.metrics().recordRejection("request_body_bytes");
        st->body_too_large_ = true;  // its DATA is dropped
        st->handler_ = StaticResponse::sendStatus(
            *st, requestEntityTooLarge(s.limits_.max_request_body_bytes));
        return 0;
      }
      st->handler_ = s.router_.route(st->head_, *st);
      if (end_stream && st->handler_) st->handler_->onRequestComplete();
    } else if (frame->hd.type == NGHTTP2_DATA && end_stream && st->handler_ &&
               !st->headers_too_large_ && !st->body_too_large_) {
      st->handler_->onRequestComplete();
    }
  } catch (...) {
    // E.g. the router or a handler's constructor failed.
    reportInternalError(kCallback, "HTTP/2 onFrameRecv");
    s.resetAfterError(*st);
  }
  return 0;
}

int Http2Session::onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                              size_t len, void* p) noexcept {
  auto& s = self(p);
  Stream* st = s.streamOf(id);
  if (st == nullptr || !st->handler_ || st->headers_too_large_ || st->body_too_large_ ||
      st->reset_) {
    s.consume(id, len);
    return 0;
  }
  try {
    if ((st->body_bytes_ += int64_t(len)) > s.limits_.max_request_body_bytes) {
      // A body without a length, past the limit: the request ends here.
      st->body_too_large_ = true;
      s.consume(id, len);
      s.submitReset(id, NGHTTP2_CANCEL);
      s.host_.metrics().recordRejection("request_body_bytes");
      return 0;
    }
    st->handler_->onRequestBody(data, len);
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onDataChunk");
    s.consume(id, len);  // whether the handler took them or not: the stream is reset
    s.resetAfterError(*st);
  }
  return 0;
}

int Http2Session::onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* p) noexcept {
  auto& s = self(p);
  const auto it = s.streams_.find(id);
  if (it == s.streams_.end()) return 0;
  std::unique_ptr<Stream> st = std::move(it->second);
  s.streams_.erase(it);
  if (s.streams_.empty() && !s.closing_) s.armIdle();
  try {
    if (st->handler_) st->handler_->onDownstreamClosed();
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onStreamClose");  // the stream is gone already
  }
  return 0;  // st and its handler are destroyed here
}

ssize_t Http2Session::onReadResponseBody(nghttp2_session*, int32_t id, uint8_t*, size_t length,
                                         uint32_t* flags, nghttp2_data_source*, void* p) noexcept {
  Stream* st = self(p).streamOf(id);
  if (st == nullptr || !st->handler_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (st->reset_) return NGHTTP2_ERR_DEFERRED;  // its RST_STREAM is on the way
  try {
    bool eof = false;
    const size_t ready = st->handler_->responseBodyReady(&eof);
    if (ready == 0 && !eof) return NGHTTP2_ERR_DEFERRED;
    const size_t n = std::min(ready, length);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (eof && n == ready) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return ssize_t(n);
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onReadResponseBody");
    st->reset_ = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
}

int Http2Session::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                             size_t length, nghttp2_data_source*, void* p) noexcept {
  auto& s = self(p);
  Stream* st = s.streamOf(frame->hd.stream_id);
  if (st == nullptr || !st->handler_ || frame->data.padlen > 0) {
    reportInternalError(kCallback, "HTTP/2 onSendData",
                        "DATA for a stream without a handler, or padded");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  evbuffer* payload = s.data_payload_;
  try {
    if (length > 0) st->handler_->pullResponseBody(payload, length);
    if (evbuffer_get_length(payload) != length) {
      throw std::runtime_error("a handler gave less response body than it had ready");
    }
  } catch (...) {
    reportInternalError(kCallback, "HTTP/2 onSendData");
    evbuffer_drain(payload, evbuffer_get_length(payload));
    st->reset_ = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nothing of the frame written: nghttp2 resets
                                                   // the stream
  }
  evbuffer* out = bufferevent_get_output(s.bev_);
  if (evbuffer_add(out, framehd, 9) != 0) {
    reportInternalError(Metrics::InternalError::kLibevent, "HTTP/2 onSendData",
                        "evbuffer_add failed");
    evbuffer_drain(payload, evbuffer_get_length(payload));
    st->reset_ = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (evbuffer_add_buffer(out, payload) != 0) {  // moves the chains, copies nothing
    reportInternalError(Metrics::InternalError::kLibevent, "HTTP/2 onSendData",
                        "evbuffer_add_buffer failed");
    return NGHTTP2_ERR_CALLBACK_FAILURE;  // half a frame written: the connection cannot go on
  }
  return 0;
}

}  // namespace kcp::proxy
