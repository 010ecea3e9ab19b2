#include "proxy/handlers/upgrade_tunnel.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <new>

#include "config/log.h"
#include "encoder/status.h"
#include "proxy/net/tls.h"

namespace kcp::proxy {
namespace {

// Bytes buffered here in either direction before we stop reading the source.
constexpr size_t kBufferLimit = 1 << 20;
constexpr auto kCallback = Metrics::InternalError::kEventCallback;

}  // namespace

UpgradeTunnel::UpgradeTunnel(event_base* base, const UpstreamTarget& target, SSL_CTX* ssl_ctx,
                             std::chrono::milliseconds dial_timeout, const RequestHead& head,
                             const RequestInfo& info, DownstreamStream& downstream,
                             Metrics::Shard& metrics)
    : downstream_(downstream),
      path_(head.path),
      record_(metrics, "connect", info.resource, head, "upstream", downstream.peer()) {
  dial_timer_ = evtimer_new(base, onDialTimeoutCb, this);
  if (dial_timer_ == nullptr) throw std::bad_alloc();  // nothing else to free yet
  const timeval dial = timevalOf(dial_timeout);
  try {
    if (evtimer_add(dial_timer_, &dial) != 0) {
      reportInternalError(Metrics::InternalError::kLibevent, "upgrade dial timer",
                          "evtimer_add failed");
      connect_error_ = "cannot arm the dial timer";
    } else {
      bev_ = connectUpstream(base, target, ssl_ctx, {"http/1.1"}, &connect_error_);
    }
    if (bev_ == nullptr) {
      event_active(dial_timer_, 0,
                   0);  // report on the next turn: the session is still setting this handler up
      return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
    bufferevent_setcb(bev_, onReadCb, onWriteCb, onEventCb, this);
    bufferevent_setwatermark(bev_, EV_READ, 0, kBufferLimit);
    bufferevent_setwatermark(bev_, EV_WRITE, kBufferLimit / 2, 0);
    // The request head, as kube-apiserver expects an upgrade: over HTTP/1.1.
    evbuffer* out = bufferevent_get_output(bev_);
    bool ok = evbuffer_add_printf(
                  out, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n",
                  head.method.c_str(), head.path.c_str(), target.authority.c_str(),
                  head.upgrade.c_str()) >= 0;
    const auto add = [&](std::string_view bytes) {
      ok = ok && evbuffer_add(out, bytes.data(), bytes.size()) == 0;
    };
    for (const auto& h : head.headers) {
      add(h.name);
      add(": ");
      add(h.value);
      add("\r\n");
    }
    add("\r\n");
    if (!ok || bufferevent_enable(bev_, EV_READ | EV_WRITE) != 0) {
      // A request head with a hole in it must not go out: fail like an
      // unreachable upstream, on the next turn.
      reportInternalError(Metrics::InternalError::kLibevent, "upgrade request head",
                          "evbuffer_add or bufferevent_enable failed");
      bufferevent_free(bev_);
      bev_ = nullptr;
      connect_error_ = "cannot buffer the upgrade request";
      event_active(dial_timer_, 0, 0);
    }
  } catch (...) {
    // No destructor runs for a constructor that throws.
    if (bev_ != nullptr) bufferevent_free(bev_);
    event_free(dial_timer_);
    throw;
  }
}

UpgradeTunnel::~UpgradeTunnel() {
  if (bev_ != nullptr) bufferevent_free(bev_);
  event_free(dial_timer_);
}

void UpgradeTunnel::onDialTimeoutCb(evutil_socket_t, short, void* p) noexcept {
  auto& t = *static_cast<UpgradeTunnel*>(p);
  try {
    t.fail(t.connect_error_.empty() ? "timed out connecting to upstream for the upgrade"
                                    : t.connect_error_);
  } catch (...) {
    reportInternalError(kCallback, "upgrade dial timeout");
    t.abortExchange();
  }
}

void UpgradeTunnel::abortExchange() noexcept {
  if (dial_timer_ != nullptr) evtimer_del(dial_timer_);
  if (bev_ != nullptr) bufferevent_disable(bev_, EV_READ | EV_WRITE);
  upstream_closed_ = true;
  try {
    downstream_.resetStream();
  } catch (...) {
    // The session's own close failed: nothing more to do from here.
  }
}

void UpgradeTunnel::fail(const std::string& reason) {
  evtimer_del(dial_timer_);
  if (response_started_) {
    upstream_closed_ = true;
    downstream_.resumeResponse();
    return;
  }
  response_started_ = true;
  record_.setStatus(503);
  log::warning("upstream unavailable for an upgrade", {{"path", path_}, {"reason", reason}});
  // Nothing reached the client yet: a normal error response instead.
  const std::string body =
      encoder::statusJson({503,
                           "ServiceUnavailable",
                           "the kube-apiserver behind kube-cache-proxy is unavailable: " + reason,
                           {}});
  if (bev_ != nullptr) {
    bufferevent_free(bev_);
    bev_ = nullptr;
  }
  std::string raw =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  response_buffer_ = std::move(raw);
  upstream_closed_ = true;
  ResponseHead head;
  head.raw = true;
  downstream_.submitResponse(head, false);
}

void UpgradeTunnel::onEventCb(bufferevent*, short what, void* p) noexcept {
  auto& t = *static_cast<UpgradeTunnel*>(p);
  try {
    if (what & BEV_EVENT_CONNECTED) {
      evtimer_del(t.dial_timer_);
      evutil_socket_t fd = bufferevent_getfd(t.bev_);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return;
    }
    if (!t.response_started_ && (what & BEV_EVENT_ERROR)) {
      t.fail(drainOpensslErrors());
      return;
    }
    // Upstream closed: whatever it sent is delivered, then the client side closes.
    t.upstream_closed_ = true;
    bufferevent_disable(t.bev_, EV_READ | EV_WRITE);
    t.downstream_.resumeResponse();
  } catch (...) {
    reportInternalError(kCallback, "upgrade connection event");
    t.abortExchange();
  }
}

void UpgradeTunnel::onReadCb(bufferevent*, void* p) noexcept {
  auto& t = *static_cast<UpgradeTunnel*>(p);
  try {
    if (!t.response_started_) {
      t.response_started_ = true;
      // "HTTP/1.1 101 ..." -> 101, for metrics and logs only.
      char line[16] = {};
      evbuffer_copyout(bufferevent_get_input(t.bev_), line, sizeof line - 1);
      t.record_.setStatus(std::atoi(line + 9));
      ResponseHead head;
      head.raw = true;
      t.downstream_.submitResponse(head, false);
    }
    t.downstream_.resumeResponse();
  } catch (...) {
    reportInternalError(kCallback, "upgrade read");
    t.abortExchange();
  }
}

void UpgradeTunnel::onWriteCb(bufferevent*, void* p) noexcept {
  auto& t = *static_cast<UpgradeTunnel*>(p);
  try {
    if (t.pending_consumed_ > 0)
      t.downstream_.consumedRequestBody(std::exchange(t.pending_consumed_, 0));
  } catch (...) {
    reportInternalError(kCallback, "upgrade write");
    t.abortExchange();
  }
}

void UpgradeTunnel::onRequestBody(const uint8_t* data, size_t len) {
  record_.addBytesIn(len);
  if (bev_ == nullptr || upstream_closed_) {
    downstream_.consumedRequestBody(len);
    return;
  }
  if (bufferevent_write(bev_, data, len) != 0) {
    // Client bytes lost: the tunnel cannot go on.
    reportInternalError(Metrics::InternalError::kLibevent, "upgrade request body",
                        "bufferevent_write failed");
    downstream_.consumedRequestBody(len);
    fail("cannot buffer the client's bytes");
    return;
  }
  // Report consumption once upstream drains below the limit (onWriteCb).
  if (evbuffer_get_length(bufferevent_get_output(bev_)) < kBufferLimit) {
    downstream_.consumedRequestBody(len);
  } else {
    pending_consumed_ += len;
  }
}

void UpgradeTunnel::onRequestComplete() {}

size_t UpgradeTunnel::responseBodyReady(bool* eof) {
  const size_t n = !response_buffer_.empty() ? response_buffer_.size()
                   : bev_ != nullptr         ? evbuffer_get_length(bufferevent_get_input(bev_))
                                             : 0;
  *eof = upstream_closed_;
  return n;
}

void UpgradeTunnel::pullResponseBody(evbuffer* out, size_t n) {
  record_.addBytesOut(n);
  // A failure throws: the session resets (closes) the client side.
  if (!response_buffer_.empty()) {
    if (evbuffer_add(out, response_buffer_.data(), n) != 0) throw std::bad_alloc();
    response_buffer_.erase(0, n);
    return;
  }
  if (evbuffer_remove_buffer(bufferevent_get_input(bev_), out, n) != int(n)) throw std::bad_alloc();
}

void UpgradeTunnel::onDownstreamClosed() {
  if (bev_ != nullptr) bufferevent_disable(bev_, EV_READ | EV_WRITE);
}

}  // namespace kcp::proxy
