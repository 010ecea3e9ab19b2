// An HTTP/1.1 connection upgrade (kubectl exec/attach/port-forward over SPDY
// or WebSocket) forwarded on a dedicated HTTP/1.1 TLS connection to
// kube-apiserver: the request head goes up as it came (identity aside), and
// from then on bytes are copied both ways, with backpressure, until either
// side closes. kube-apiserver's own answer (101, or an error) reaches the
// client verbatim.
#pragma once

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "proxy/handlers/request_record.h"
#include "proxy/net/exchange.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

class UpgradeTunnel : public RequestHandler {
 public:
  UpgradeTunnel(event_base* base, const UpstreamTarget& target, SSL_CTX* ssl_ctx,
                std::chrono::milliseconds dial_timeout, const RequestHead& head,
                const RequestInfo& info, DownstreamStream& downstream, Metrics::Shard& metrics);
  ~UpgradeTunnel() override;

  void onRequestBody(const uint8_t* data, size_t len) override;
  void onRequestComplete() override;
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override;

 private:
  // libevent callbacks: an exception ends the exchange (abortExchange()).
  static void onReadCb(bufferevent*, void* p) noexcept;
  static void onWriteCb(bufferevent*, void* p) noexcept;
  static void onEventCb(bufferevent*, short what, void* p) noexcept;
  static void onDialTimeoutCb(evutil_socket_t, short, void* p) noexcept;
  void fail(const std::string& reason);
  // After an internal failure (reported by the caller): stops both
  // directions and resets the client side (on HTTP/1.1, closes it).
  void abortExchange() noexcept;

  DownstreamStream& downstream_;
  std::string path_;
  RequestRecord record_;
  bufferevent* bev_ = nullptr;
  event* dial_timer_ = nullptr;
  std::string connect_error_;    // why the connection could not even start
  std::string response_buffer_;  // our own error response when upstream was unreachable
  size_t pending_consumed_ = 0;  // client bytes written upstream, not yet reported consumed
  bool upstream_closed_ = false;
  bool response_started_ = false;
};

}  // namespace kcp::proxy
