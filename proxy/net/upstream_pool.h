// Connections to kube-apiserver: a per-event-loop pool of HTTP/2 client
// sessions (nghttp2 over OpenSSL bufferevents) that respects each
// connection's SETTINGS_MAX_CONCURRENT_STREAMS and opens more when needed.
//
// Flow control is end to end: automatic WINDOW_UPDATEs are off, and a
// stream's window reopens only as its handler reports bytes passed on
// (UpstreamStream::consume), so a slow client stalls its upstream stream
// instead of growing our buffers.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "config/kubeconfig.h"
#include "proxy/net/event_loop.h"
#include "proxy/request/http.h"

namespace kcp::proxy {

// What happens on one upstream stream, delivered to its user (the forwarder).
class UpstreamStreamHandler {
 public:
  virtual ~UpstreamStreamHandler() = default;
  virtual void onUpstreamResponse(const ResponseHead& head, bool end_stream) = 0;
  virtual void onUpstreamData(const uint8_t* data, size_t len) = 0;
  // The response ended cleanly. No more calls follow.
  virtual void onUpstreamComplete() = 0;
  // The stream failed (connection refused or lost, reset, timeout). No more
  // calls follow.
  virtual void onUpstreamError(const std::string& reason) = 0;
  // Request body: bytes ready now and whether the body ends after them.
  virtual size_t requestBodyReady(bool* eof) = 0;
  // Moves exactly `n` (<= requestBodyReady) request-body bytes into `out`.
  virtual void pullRequestBody(evbuffer* out, size_t n) = 0;
};

class UpstreamConnection;

// One request in flight upstream. Owned by its connection; the handler may
// use it until it receives onUpstreamComplete or onUpstreamError, or until
// it calls cancel().
class UpstreamStream {
 public:
  // `n` response-body bytes have left our buffers: let upstream send as much more.
  void consume(size_t n);
  // More request body (or its end) is ready to send.
  void resumeRequestBody();
  // Resets the stream (CANCEL); the handler gets no further calls.
  void cancel();

 private:
  friend class UpstreamConnection;
  UpstreamStream(UpstreamConnection* conn, RequestHead head, UpstreamStreamHandler* handler)
      : conn_(conn), head_(std::move(head)), handler_(handler) {}
  UpstreamConnection* conn_;
  RequestHead head_;
  UpstreamStreamHandler* handler_;  // non-owning; null once detached
  int32_t id_ = -1;                 // -1 until submitted to nghttp2
  ResponseHead response_;
  bool response_started_ = false;
  size_t unconsumed_ = 0;  // response bytes received but not yet consumed
};

// Where requests go and who they are sent as.
struct UpstreamTarget {
  std::string host;  // name or IP, without brackets
  std::string port;
  std::string authority;  // host:port as sent in :authority
  std::string tls_server_name;
  bool verify = true;
};

// Parses "https://host:port" (IPv6 in brackets, default port 443).
UpstreamTarget parseUpstreamServer(const config::UpstreamConfig& cfg);

// Starts a TLS connection to `target` offering `alpn`: the returned
// bufferevent (owning its socket and SSL) reports BEV_EVENT_CONNECTED or an
// error later. Null, with `error` set, when it cannot even start.
// getaddrinfo blocks, but kube-apiserver is normally an IP (in-cluster,
// kubeconfigs) and this runs only when a new connection is opened.
bufferevent* connectUpstream(event_base* base, const UpstreamTarget& target, SSL_CTX* ssl_ctx,
                             const std::vector<std::string>& alpn, std::string* error);

class UpstreamPool {
 public:
  // `ssl_ctx` must outlive the pool; it decides the TLS identity presented.
  // Requests are sent with the headers they are given: who they act as is the
  // caller's decision.
  // `open_connections` (may be null) counts this pool's established
  // connections, for the upstream-connections metric.
  UpstreamPool(event_base* base, UpstreamTarget target, SSL_CTX* ssl_ctx,
               std::chrono::milliseconds dial_timeout, std::chrono::milliseconds keepalive,
               std::string name, std::atomic<int64_t>* open_connections = nullptr);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Starts a request. The handler gets its first callback on a later loop
  // turn at the earliest. Never returns null.
  UpstreamStream* submit(RequestHead head, UpstreamStreamHandler* handler);

  const UpstreamTarget& target() const { return target_; }
  const std::string& name() const { return name_; }

 private:
  friend class UpstreamConnection;
  void onConnectionDead(UpstreamConnection* conn);
  static void onReap(evutil_socket_t, short, void* arg) noexcept;

  event_base* base_;
  UpstreamTarget target_;
  SSL_CTX* ssl_ctx_;
  std::chrono::milliseconds dial_timeout_;
  std::chrono::milliseconds keepalive_;
  std::string name_;
  std::atomic<int64_t>* open_connections_;
  std::list<std::unique_ptr<UpstreamConnection>> connections_;
  std::list<std::unique_ptr<UpstreamConnection>> dead_;  // deleted on the next loop turn
  event* reap_ev_;
};

}  // namespace kcp::proxy
