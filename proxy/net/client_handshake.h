// The first moments of a client connection: the TLS handshake (bounded in
// time) and ALPN, or, on the cleartext listener, a look at the first bytes
// for the HTTP/2 connection preface. Then the connection is handed to an
// Http2Session or Http1Session and this object is released.
#pragma once

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include <string>

#include "proxy/net/exchange.h"
#include "proxy/net/session.h"

namespace kcp::proxy {

class ClientHandshake : public Session {
 public:
  // Takes ownership of `fd`. `ssl_ctx` null means cleartext.
  ClientHandshake(SessionHost& host, Router& router, const ClientLimits& limits, SSL_CTX* ssl_ctx,
                  evutil_socket_t fd, std::string peer_address);
  ~ClientHandshake() override;
  void start();
  void drain() override { finish("shutting down"); }
  size_t activeRequests() const override { return 0; }

 private:
  void onReady();
  void sniffCleartext();
  // Gives the connection to the protocol's session and releases this object.
  void handOver(bool h2, PeerInfo peer);
  void finish(const char* why);
  // libevent callbacks; an exception drops the connection.
  static void onReadCb(bufferevent*, void* p) noexcept;
  static void onEventCb(bufferevent*, short what, void* p) noexcept;
  static void onTimeoutCb(evutil_socket_t, short, void* p) noexcept;
  void failed(const char* context) noexcept;

  SessionHost& host_;
  Router& router_;
  ClientLimits limits_;
  SSL_CTX* ssl_ctx_;
  bufferevent* bev_ = nullptr;  // null once handed over
  std::string peer_address_;
  event* timer_ = nullptr;
  bool done_ = false;
};

}  // namespace kcp::proxy
