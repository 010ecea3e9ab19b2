#include "proxy/net/upstream_pool.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "config/log.h"
#include "proxy/net/nghttp2_io.h"
#include "proxy/net/tls.h"
#include "proxy/ops/metrics.h"

namespace kcp::proxy {
namespace {

// Per-stream receive window: what one slow client can leave buffered here.
constexpr int32_t kStreamWindow = 1 << 20;
// Connection window: many streams (mostly idle watches) share a connection.
constexpr int32_t kConnectionWindow = 64 << 20;
// Stop producing frames while this much is waiting for the socket.
// Before the server's SETTINGS arrive, assume RFC 9113's recommended minimum.
constexpr uint32_t kAssumedMaxStreams = 100;
constexpr auto kCallback = Metrics::InternalError::kUpstreamCallback;

}  // namespace

UpstreamTarget parseUpstreamServer(const config::UpstreamConfig& cfg) {
  UpstreamTarget t;
  std::string rest = cfg.server;
  if (rest.starts_with("https://")) {
    rest = rest.substr(8);
  } else {
    throw config::ConfigError("upstream server " + cfg.server + ": only https:// is supported");
  }
  if (const auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string::npos)
      throw config::ConfigError("upstream server " + cfg.server + ": bad IPv6 address");
    t.host = rest.substr(1, close - 1);
    t.port = rest.size() > close + 2 && rest[close + 1] == ':' ? rest.substr(close + 2) : "443";
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    t.host = rest.substr(0, colon);
    t.port = rest.substr(colon + 1);
  } else {
    t.host = rest;
    t.port = "443";
  }
  if (t.host.empty()) throw config::ConfigError("upstream server " + cfg.server + ": no host");
  t.authority = rest;
  t.tls_server_name = cfg.tls_server_name;
  t.verify = !cfg.insecure_skip_tls_verify;
  return t;
}

bufferevent* connectUpstream(event_base* base, const UpstreamTarget& target, SSL_CTX* ssl_ctx,
                             const std::vector<std::string>& alpn, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &res); rc != 0) {
    *error = "cannot resolve " + target.host + ": " + gai_strerror(rc);
    return nullptr;
  }
  SSL* ssl = SSL_new(ssl_ctx);
  if (ssl == nullptr ||
      !prepareUpstreamSsl(ssl, target.host, target.tls_server_name, target.verify, alpn)) {
    if (ssl != nullptr) SSL_free(ssl);
    freeaddrinfo(res);
    *error = "TLS setup: " + drainOpensslErrors();
    return nullptr;
  }
  bufferevent* bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) {
    SSL_free(ssl);  // libevent 2.1 does not take it when it fails
    freeaddrinfo(res);
    reportInternalError(Metrics::InternalError::kLibevent, "upstream connect",
                        "bufferevent_openssl_socket_new failed");
    *error = "cannot set up a connection to " + target.authority;
    return nullptr;
  }
  const int rc = bufferevent_socket_connect(bev, res->ai_addr, int(res->ai_addrlen));
  freeaddrinfo(res);
  if (rc != 0) {
    bufferevent_free(bev);
    *error = "cannot connect to " + target.authority;
    return nullptr;
  }
  return bev;
}

// One HTTP/2 connection to upstream and the streams on it.
class UpstreamConnection {
 public:
  enum class State { kConnecting, kReady, kDraining, kDead };

  explicit UpstreamConnection(UpstreamPool& pool) : pool_(pool) {}
  ~UpstreamConnection() {
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (bev_ != nullptr) bufferevent_free(bev_);
    if (flush_ev_ != nullptr) event_free(flush_ev_);
    if (dial_timer_ != nullptr) event_free(dial_timer_);
    if (liveness_timer_ != nullptr) event_free(liveness_timer_);
    if (data_payload_ != nullptr) evbuffer_free(data_payload_);
  }

  // Never throws: a failure fails the connection, and its streams' handlers
  // hear on a later turn.
  void connect() noexcept;
  // Takes this connection out of the pool's open-connections gauge.
  void uncount() {
    if (std::exchange(counted_, false) && pool_.open_connections_ != nullptr) {
      pool_.open_connections_->fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // Delivers the failure to every stream still attached; called by the pool
  // on the loop turn after the connection died, just before deleting it.
  void notifyFailed() noexcept;
  State state() const { return state_; }
  // Whether this connection can take one more stream now or once connected.
  bool hasCapacity() const {
    if (state_ == State::kConnecting) return streams_.size() < kAssumedMaxStreams;
    if (state_ != State::kReady) return false;
    const uint32_t max =
        nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return streams_.size() < std::min<uint32_t>(max, 1u << 20);
  }
  UpstreamStream* add(RequestHead head, UpstreamStreamHandler* handler) {
    auto stream =
        std::unique_ptr<UpstreamStream>(new UpstreamStream(this, std::move(head), handler));
    UpstreamStream* raw = stream.get();
    streams_.push_back(std::move(stream));
    if (state_ == State::kReady) {
      try {
        submit(raw);
      } catch (...) {
        removeStream(raw);  // the handler is failing to start: it must never hear from this stream
        throw;
      }
    }
    return raw;
  }

  // These three never throw (handlers call them from their destructors).
  void consume(UpstreamStream* s, size_t n) noexcept {
    if (state_ == State::kDead || s->id_ < 0) return;
    n = std::min(n, s->unconsumed_);
    s->unconsumed_ -= n;
    if (const int rv = nghttp2_session_consume(session_, s->id_, n); rv != 0) {
      nghttp2Failed("nghttp2_session_consume", rv);
      return;
    }
    scheduleFlush();
  }
  void resume(UpstreamStream* s) noexcept {
    if (state_ == State::kDead || s->id_ < 0) return;
    // INVALID_ARGUMENT: nothing deferred on the stream (or it is gone), so nothing to resume.
    if (const int rv = nghttp2_session_resume_data(session_, s->id_);
        rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) {
      nghttp2Failed("nghttp2_session_resume_data", rv);
      return;
    }
    scheduleFlush();
  }
  void cancel(UpstreamStream* s) noexcept {
    s->handler_ = nullptr;
    if (s->id_ < 0) {  // not sent yet: just forget it
      if (state_ == State::kConnecting) removeStream(s);
      return;
    }
    if (state_ != State::kDead) {
      if (const int rv =
              nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_CANCEL);
          rv != 0) {
        nghttp2Failed("nghttp2_submit_rst_stream", rv);
        return;
      }
      scheduleFlush();
    }
  }

 private:
  void submit(UpstreamStream* s);
  void fail(const std::string& reason);
  // fail() where nothing may throw: if fail() itself throws (its reason or
  // log line), the pool still reaps the connection.
  void failNoThrow(const char* reason) noexcept;
  // An internal failure (see reportInternalError): counted, logged, and the
  // connection fails (`detail` null inside a catch block).
  void failInternal(Metrics::InternalError where, const char* context,
                    const char* detail = nullptr) noexcept {
    reportInternalError(where, context, detail != nullptr ? detail : "");
    failNoThrow("internal error");
  }
  // nghttp2's `call` returned `rv`: counted, logged, and the connection fails.
  void nghttp2Failed(const char* call, int rv) noexcept {
    reportInternalError(Metrics::InternalError::kNghttp2, call, nghttp2_strerror(rv));
    failNoThrow("nghttp2 failed");
  }
  // RST_STREAM INTERNAL_ERROR after a handler failed on stream `id`; its
  // handler hears onUpstreamError when the stream closes.
  void resetAfterError(int32_t id) noexcept {
    if (const int rv =
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        rv != 0) {
      nghttp2Failed("nghttp2_submit_rst_stream", rv);
      return;
    }
    scheduleFlush();
  }
  void removeStream(UpstreamStream* s);
  void scheduleFlush() {
    if (flush_ev_ != nullptr && state_ != State::kDead) event_active(flush_ev_, 0, 0);
  }
  void flush();
  void onConnected();
  void onRead();
  static UpstreamConnection& self(void* p) { return *static_cast<UpstreamConnection*>(p); }

  // libevent callbacks: an exception fails the connection.
  static void onReadCb(bufferevent*, void* p) noexcept {
    try {
      self(p).onRead();
    } catch (...) {
      self(p).failInternal(kCallback, "upstream read");
    }
  }
  static void onWriteCb(bufferevent*, void* p) noexcept {
    try {
      self(p).flush();
    } catch (...) {
      self(p).failInternal(kCallback, "upstream write");
    }
  }
  static void onEventCb(bufferevent* bev, short what, void* p) noexcept;
  static void onFlushCb(evutil_socket_t, short, void* p) noexcept {
    try {
      self(p).flush();
    } catch (...) {
      self(p).failInternal(kCallback, "upstream flush");
    }
  }
  static void onDialTimeoutCb(evutil_socket_t, short, void* p) noexcept {
    self(p).failNoThrow("timed out connecting to upstream");
  }
  static void onLivenessCb(evutil_socket_t, short, void* p) noexcept { self(p).checkLiveness(); }
  void checkLiveness() noexcept {
    if (state_ == State::kDead || session_ == nullptr) return;
    // After `keepalive` without a byte from upstream, PING; nothing for as
    // long again means the connection is dead (a half-open TCP connection
    // would otherwise stall every watch on it forever).
    const auto now = std::chrono::steady_clock::now();
    const auto idle = pool_.keepalive_;
    if (ping_sent_ && now - last_read_ > 2 * idle) {
      failNoThrow("upstream did not answer a PING in time");
    } else if (!ping_sent_ && now - last_read_ > idle) {
      if (const int rv = nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr); rv != 0) {
        nghttp2Failed("nghttp2_submit_ping", rv);
        return;
      }
      ping_sent_ = true;
      scheduleFlush();
    }
  }

  // nghttp2 callbacks
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* p) noexcept;
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* p) noexcept;
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* p) noexcept;
  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* p) noexcept;
  static ssize_t onReadRequestBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                   uint32_t* flags, nghttp2_data_source* source, void* p) noexcept;
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* p) noexcept;

  UpstreamStream* streamOf(int32_t id) {
    return static_cast<UpstreamStream*>(nghttp2_session_get_stream_user_data(session_, id));
  }

  UpstreamPool& pool_;
  State state_ = State::kConnecting;
  bufferevent* bev_ = nullptr;
  nghttp2_session* session_ = nullptr;
  event* flush_ev_ = nullptr;
  // A DATA frame's payload, pulled from its handler before any byte of the
  // frame is written: a handler that fails costs its stream, not the
  // connection's framing. Empty between frames.
  evbuffer* data_payload_ = nullptr;
  event* dial_timer_ = nullptr;
  event* liveness_timer_ = nullptr;
  std::chrono::steady_clock::time_point last_read_ = std::chrono::steady_clock::now();
  bool ping_sent_ = false;
  bool counted_ = false;                                  // in the pool's open-connections gauge
  std::vector<std::unique_ptr<UpstreamStream>> streams_;  // every stream not yet closed
  std::string fail_reason_;
};

void UpstreamStream::consume(size_t n) {
  conn_->consume(this, n);
}
void UpstreamStream::resumeRequestBody() {
  conn_->resume(this);
}
void UpstreamStream::cancel() {
  conn_->cancel(this);
}

void UpstreamConnection::connect() noexcept {
  try {
    flush_ev_ = event_new(pool_.base_, -1, 0, onFlushCb, this);
    data_payload_ = evbuffer_new();
    dial_timer_ = evtimer_new(pool_.base_, onDialTimeoutCb, this);
    const timeval dial = timevalOf(pool_.dial_timeout_);
    if (flush_ev_ == nullptr || data_payload_ == nullptr || dial_timer_ == nullptr ||
        evtimer_add(dial_timer_, &dial) != 0) {
      failInternal(Metrics::InternalError::kLibevent, "upstream connect",
                   "event_new, evbuffer_new or evtimer_add failed");
      return;
    }
    std::string error;
    bev_ = connectUpstream(pool_.base_, pool_.target_, pool_.ssl_ctx_, {"h2"}, &error);
    if (bev_ == nullptr) {
      fail(error);
      return;
    }
    bufferevent_setcb(bev_, onReadCb, onWriteCb, onEventCb, this);
    if (bufferevent_enable(bev_, EV_READ | EV_WRITE) != 0) {
      failInternal(Metrics::InternalError::kLibevent, "upstream connect",
                   "bufferevent_enable failed");
    }
  } catch (...) {
    failInternal(kCallback, "upstream connect");
  }
}

void UpstreamConnection::onEventCb(bufferevent* bev, short what, void* p) noexcept {
  auto& c = self(p);
  try {
    if (what & BEV_EVENT_CONNECTED) {
      c.onConnected();
      return;
    }
    std::string reason = "upstream connection closed";
    if (what & BEV_EVENT_ERROR) {
      const int err = EVUTIL_SOCKET_ERROR();
      const unsigned long ssl_err = bufferevent_get_openssl_error(bev);
      // libevent reports a failed socket under TLS as SSL_ERROR_SYSCALL (no
      // library): then errno says what happened (connection refused, reset).
      if (ssl_err != 0 && ERR_GET_LIB(ssl_err) != 0) {
        char buf[256];
        ERR_error_string_n(ssl_err, buf, sizeof buf);
        reason = std::string("upstream TLS error: ") + buf;
      } else if (err != 0) {
        reason = std::string("upstream connection error: ") + evutil_socket_error_to_string(err);
      } else if (ssl_err != 0) {
        reason = "upstream connection closed during TLS";
      }
    }
    c.fail(reason);
  } catch (...) {
    c.failInternal(kCallback, "upstream connection event");
  }
}

void UpstreamConnection::onConnected() {
  evtimer_del(dial_timer_);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(bev_), &alpn, &alpn_len);
  if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
    fail("upstream did not negotiate HTTP/2 (ALPN h2)");
    return;
  }
  evutil_make_socket_nonblocking(bufferevent_getfd(bev_));
  int one = 1;
  setsockopt(bufferevent_getfd(bev_), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  const int rv = newSession(&session_, false, this, [](nghttp2_session_callbacks* cbs) {
    nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onStreamClose);
    nghttp2_session_callbacks_set_send_data_callback(cbs, onSendData);
  });
  if (rv != 0) {
    nghttp2Failed("nghttp2 session creation", rv);
    return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, uint32_t(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
  };
  if (const int rv =
          nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
      rv != 0) {
    nghttp2Failed("nghttp2_submit_settings", rv);
    return;
  }
  if (const int rv =
          nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
      rv != 0) {
    nghttp2Failed("nghttp2_session_set_local_window_size", rv);
    return;
  }
  state_ = State::kReady;
  counted_ = true;
  if (pool_.open_connections_ != nullptr)
    pool_.open_connections_->fetch_add(1, std::memory_order_relaxed);
  last_read_ = std::chrono::steady_clock::now();
  if (pool_.keepalive_.count() > 0) {
    liveness_timer_ = event_new(pool_.base_, -1, EV_PERSIST, onLivenessCb, this);
    const timeval tick = timevalOf(std::max(std::chrono::milliseconds(100), pool_.keepalive_ / 4));
    if (liveness_timer_ == nullptr || event_add(liveness_timer_, &tick) != 0) {
      // Without it a half-open connection would stall its watches forever.
      failInternal(Metrics::InternalError::kLibevent, "upstream liveness timer",
                   "event_new or event_add failed");
      return;
    }
  }
  log::verbose(2, "upstream connection ready",
               {{"pool", pool_.name_}, {"upstream", pool_.target_.authority}});
  for (auto& s : streams_) submit(s.get());
  flush();
}

void UpstreamConnection::submit(UpstreamStream* s) {
  const UpstreamTarget& t = pool_.target_;
  static const std::string kMethod = ":method", kScheme = ":scheme", kAuthority = ":authority",
                           kPath = ":path", kHttps = "https";
  std::vector<nghttp2_nv> nva;
  nva.reserve(s->head_.headers.size() + 4);
  nva.push_back(headerEntry(kMethod, s->head_.method));
  nva.push_back(headerEntry(kScheme, kHttps));
  nva.push_back(headerEntry(kAuthority, t.authority));
  nva.push_back(headerEntry(kPath, s->head_.path));
  for (const auto& h : s->head_.headers) nva.push_back(headerEntry(h.name, h.value));
  nghttp2_data_provider body{};
  body.source.ptr = s;
  body.read_callback = onReadRequestBody;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            s->head_.end_stream ? nullptr : &body, s);
  if (id < 0) {  // e.g. stream ids exhausted: this connection is done
    if (nghttp2_is_fatal(id))
      Metrics::recordInternalError(Metrics::InternalError::kNghttp2);  // fail() logs it
    fail(std::string("cannot start upstream stream: ") + nghttp2_strerror(id));
    return;
  }
  s->id_ = id;
  scheduleFlush();
}

void UpstreamConnection::removeStream(UpstreamStream* s) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->get() == s) {
      streams_.erase(it);
      return;
    }
  }
}

void UpstreamConnection::fail(const std::string& reason) {
  if (state_ == State::kDead) return;
  if (liveness_timer_ != nullptr) event_del(liveness_timer_);
  uncount();
  state_ = State::kDead;  // first: see failNoThrow
  fail_reason_ = reason;
  pool_.onConnectionDead(this);  // handlers hear on the next loop turn, see notifyFailed
  // A GOAWAY-driven close is routine; anything else is worth a warning.
  if (reason.find("GOAWAY") != std::string::npos) {
    log::verbose(2, "upstream connection closed", {{"pool", pool_.name_}, {"reason", reason}});
  } else {
    log::warning("upstream connection failed", {{"pool", pool_.name_},
                                                {"upstream", pool_.target_.authority},
                                                {"reason", reason},
                                                {"streams", std::to_string(streams_.size())}});
  }
}

void UpstreamConnection::failNoThrow(const char* reason) noexcept {
  try {
    fail(reason);
  } catch (...) {
    // fail() marks the connection dead before anything that can throw:
    // make sure the pool reaps it (a no-op if it already knows).
    try {
      pool_.onConnectionDead(this);
    } catch (...) {
    }
  }
}

void UpstreamConnection::notifyFailed() noexcept {
  // A handler may cancel other streams of this connection from its callback
  // (that only detaches them) or submit new requests (they go elsewhere).
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (UpstreamStreamHandler* h = streams_[i]->handler_) {
      streams_[i]->handler_ = nullptr;
      try {
        h->onUpstreamError(fail_reason_);
      } catch (...) {
        reportInternalError(kCallback,
                            "upstream onUpstreamError");  // the other handlers still hear
      }
    }
  }
}

void UpstreamConnection::flush() {
  if (state_ == State::kDead || session_ == nullptr) return;
  evbuffer* out = bufferevent_get_output(bev_);
  if (const ssize_t err = sendFrom(session_, out, kOutputHighWatermark); err < 0) {
    internalFailure(err);  // sending fails only on our side; this counts nghttp2's own failures
    fail(std::string("nghttp2 send: ") + nghttp2_strerror(int(err)));
    return;
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_) &&
      evbuffer_get_length(out) == 0) {
    fail("upstream connection finished (GOAWAY)");
  }
}

void UpstreamConnection::onRead() {
  last_read_ = std::chrono::steady_clock::now();
  ping_sent_ = false;
  const ssize_t err =
      receiveInto(session_, bufferevent_get_input(bev_), [this] { return state_ == State::kDead; });
  if (err < 0) {
    const bool ours = internalFailure(err);
    fail(std::string(ours ? "upstream HTTP/2 session failed: "
                          : "upstream HTTP/2 protocol error: ") +
         nghttp2_strerror(int(err)));
    return;
  }
  flush();
}

// nghttp2 callbacks: an exception resets its stream (its handler hears
// onUpstreamError when the stream closes), or for what concerns no stream
// is only counted.
int UpstreamConnection::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                                 size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                                 void* p) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  UpstreamStream* s = self(p).streamOf(frame->hd.stream_id);
  if (s == nullptr || s->response_started_) return 0;  // trailers: kube-apiserver sends none
  try {
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      s->response_.status = 0;
      for (const char c : v) s->response_.status = s->response_.status * 10 + (c - '0');
    } else if (!n.starts_with(":")) {
      if (n == "content-length")
        s->response_.content_length = std::strtoll(std::string(v).c_str(), nullptr, 10);
      s->response_.headers.push_back({std::string(n), std::string(v)});
    }
  } catch (...) {
    reportInternalError(kCallback, "upstream onHeader");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
  return 0;
}

int UpstreamConnection::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                                    void* p) noexcept {
  auto& c = self(p);
  try {
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        UpstreamStream* s = c.streamOf(frame->hd.stream_id);
        if (s == nullptr || s->response_started_) break;
        if (s->response_.status >= 100 &&
            s->response_.status < 200) {  // interim: wait for the final one
          s->response_ = ResponseHead{};
          break;
        }
        s->response_started_ = true;
        const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (UpstreamStreamHandler* h = s->handler_) {
          h->onUpstreamResponse(s->response_, end);
          if (end && s->handler_ != nullptr) {
            s->handler_ = nullptr;
            h->onUpstreamComplete();
          }
        }
        break;
      }
      case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
          UpstreamStream* s = c.streamOf(frame->hd.stream_id);
          if (s != nullptr && s->handler_ != nullptr) {
            UpstreamStreamHandler* h = s->handler_;
            s->handler_ = nullptr;
            h->onUpstreamComplete();
          }
        }
        break;
      case NGHTTP2_GOAWAY:
        if (c.state_ == State::kReady) c.state_ = State::kDraining;
        log::verbose(2, "upstream sent GOAWAY", {{"pool", c.pool_.name_}});
        break;
      default:
        break;
    }
  } catch (...) {
    reportInternalError(kCallback, "upstream onFrameRecv");
    if (frame->hd.stream_id != 0) c.resetAfterError(frame->hd.stream_id);
  }
  return 0;
}

int UpstreamConnection::onDataChunk(nghttp2_session* session, uint8_t, int32_t id,
                                    const uint8_t* data, size_t len, void* p) noexcept {
  auto& c = self(p);
  UpstreamStream* s = c.streamOf(id);
  if (s == nullptr || s->handler_ == nullptr) {
    // Nobody wants it: keep the window open.
    if (const int rv = nghttp2_session_consume(session, id, len); rv != 0) {
      c.nghttp2Failed("nghttp2_session_consume", rv);
    }
    return 0;
  }
  s->unconsumed_ +=
      len;  // given back to the connection window when the stream closes, whatever happens
  try {
    s->handler_->onUpstreamData(data, len);
  } catch (...) {
    reportInternalError(kCallback, "upstream onDataChunk");
    c.resetAfterError(id);
  }
  return 0;
}

int UpstreamConnection::onStreamClose(nghttp2_session* session, int32_t id, uint32_t error_code,
                                      void* p) noexcept {
  auto& c = self(p);
  UpstreamStream* s = c.streamOf(id);
  if (s == nullptr) return 0;
  // Cannot fail: the stream exists until this callback returns.
  nghttp2_session_set_stream_user_data(session, id, nullptr);
  // Bytes the handler still holds no longer count against the stream, but
  // they did against the connection window: give that back.
  if (s->unconsumed_ > 0) {
    if (const int rv = nghttp2_session_consume_connection(session, s->unconsumed_); rv != 0) {
      c.nghttp2Failed("nghttp2_session_consume_connection", rv);
    }
  }
  UpstreamStreamHandler* h = s->handler_;
  c.removeStream(s);
  try {
    if (h != nullptr) {
      h->onUpstreamError(error_code == NGHTTP2_REFUSED_STREAM
                             ? "upstream refused the stream"
                             : std::string("upstream reset the stream: ") +
                                   nghttp2_http2_strerror(error_code));
    }
  } catch (...) {
    reportInternalError(kCallback, "upstream onStreamClose");  // the stream is gone already
  }
  if (c.state_ == State::kDraining && c.streams_.empty())
    c.failNoThrow("upstream connection drained after GOAWAY");
  return 0;
}

ssize_t UpstreamConnection::onReadRequestBody(nghttp2_session*, int32_t, uint8_t*, size_t length,
                                              uint32_t* flags, nghttp2_data_source* source,
                                              void*) noexcept {
  auto* s = static_cast<UpstreamStream*>(source->ptr);
  if (s->handler_ == nullptr) {  // the request was abandoned: end the body
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  try {
    bool eof = false;
    const size_t ready = s->handler_->requestBodyReady(&eof);
    if (ready == 0 && !eof) return NGHTTP2_ERR_DEFERRED;
    const size_t n = std::min(ready, length);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (eof && n == ready) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return ssize_t(n);
  } catch (...) {
    reportInternalError(kCallback, "upstream onReadRequestBody");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
}

int UpstreamConnection::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                   size_t length, nghttp2_data_source* source, void* p) noexcept {
  auto& c = self(p);
  auto* s = static_cast<UpstreamStream*>(source->ptr);
  if (frame->data.padlen > 0 || (length > 0 && s->handler_ == nullptr)) {  // we never pad
    reportInternalError(kCallback, "upstream onSendData",
                        "DATA for a stream without a handler, or padded");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  evbuffer* payload = c.data_payload_;
  try {
    if (length > 0) s->handler_->pullRequestBody(payload, length);
    if (evbuffer_get_length(payload) != length) {
      throw std::runtime_error("a handler gave less request body than it had ready");
    }
  } catch (...) {
    reportInternalError(kCallback, "upstream onSendData");
    evbuffer_drain(payload, evbuffer_get_length(payload));
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nothing of the frame written: nghttp2 resets
                                                   // the stream
  }
  evbuffer* out = bufferevent_get_output(c.bev_);
  if (evbuffer_add(out, framehd, 9) != 0) {
    reportInternalError(Metrics::InternalError::kLibevent, "upstream onSendData",
                        "evbuffer_add failed");
    evbuffer_drain(payload, evbuffer_get_length(payload));
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (evbuffer_add_buffer(out, payload) != 0) {  // moves the chains, copies nothing
    reportInternalError(Metrics::InternalError::kLibevent, "upstream onSendData",
                        "evbuffer_add_buffer failed");
    return NGHTTP2_ERR_CALLBACK_FAILURE;  // half a frame written: the connection cannot go on
  }
  return 0;
}

UpstreamPool::UpstreamPool(event_base* base, UpstreamTarget target, SSL_CTX* ssl_ctx,
                           std::chrono::milliseconds dial_timeout,
                           std::chrono::milliseconds keepalive, std::string name,
                           std::atomic<int64_t>* open_connections)
    : base_(base),
      target_(std::move(target)),
      ssl_ctx_(ssl_ctx),
      dial_timeout_(dial_timeout),
      keepalive_(keepalive),
      name_(std::move(name)),
      open_connections_(open_connections),
      reap_ev_(event_new(base, -1, 0, onReap, this)) {
  if (reap_ev_ == nullptr)
    throw std::runtime_error("upstream pool " + name_ + ": cannot create its event (libevent)");
}

UpstreamPool::~UpstreamPool() {
  for (auto& c : connections_) c->uncount();
  event_free(reap_ev_);
  // Connections (and their streams) go without calling handlers: whoever
  // destroys the pool has already torn down every request.
}

UpstreamStream* UpstreamPool::submit(RequestHead head, UpstreamStreamHandler* handler) {
  UpstreamConnection* chosen = nullptr;
  for (auto& c : connections_) {
    if (c->hasCapacity()) {
      chosen = c.get();
      if (c->state() == UpstreamConnection::State::kReady) break;  // prefer a live one
    }
  }
  if (chosen == nullptr) {
    connections_.push_back(std::make_unique<UpstreamConnection>(*this));
    chosen = connections_.back().get();
    UpstreamStream* s = chosen->add(std::move(head), handler);
    chosen->connect();  // may fail at once; the handler then hears on a later turn
    return s;
  }
  return chosen->add(std::move(head), handler);
}

void UpstreamPool::onConnectionDead(UpstreamConnection* conn) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == conn) {
      dead_.push_back(std::move(*it));
      connections_.erase(it);
      break;
    }
  }
  event_active(reap_ev_, 0, 0);
}

void UpstreamPool::onReap(evutil_socket_t, short, void* arg) noexcept {
  // Cannot throw: a move, and notifyFailed() catches what each handler throws.
  auto dead = std::move(static_cast<UpstreamPool*>(arg)->dead_);
  for (auto& conn : dead) conn->notifyFailed();
}

}  // namespace kcp::proxy
