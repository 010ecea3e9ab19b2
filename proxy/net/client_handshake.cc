#include "proxy/net/client_handshake.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstring>

#include "config/log.h"
#include "proxy/net/event_loop.h"
#include "proxy/net/http1_session.h"
#include "proxy/net/http2_session.h"
#include "proxy/net/tls.h"

namespace kcp::proxy {
namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

ClientHandshake::ClientHandshake(SessionHost& host, Router& router, const ClientLimits& limits,
                                 SSL_CTX* ssl_ctx, evutil_socket_t fd, std::string peer_address)
    : host_(host),
      router_(router),
      limits_(limits),
      ssl_ctx_(ssl_ctx),
      peer_address_(std::move(peer_address)) {
  evutil_make_socket_nonblocking(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (ssl_ctx_ != nullptr) {
    SSL* ssl = SSL_new(ssl_ctx_);
    if (ssl != nullptr) {
      bev_ = bufferevent_openssl_socket_new(host.base(), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
      if (bev_ == nullptr)
        SSL_free(ssl);  // libevent 2.1 takes neither the SSL nor the socket when it fails
    }
  } else {
    bev_ = bufferevent_socket_new(host.base(), fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (bev_ == nullptr) {
    evutil_closesocket(fd);  // start() reports it
  }
}

ClientHandshake::~ClientHandshake() {
  if (bev_ != nullptr) bufferevent_free(bev_);
  if (timer_ != nullptr) event_free(timer_);
}

void ClientHandshake::onTimeoutCb(evutil_socket_t, short, void* p) noexcept {
  auto& h = *static_cast<ClientHandshake*>(p);
  try {
    h.host_.metrics().recordRejection("handshake_timeout");
    h.finish("handshake timed out");
  } catch (...) {
    h.failed("client handshake timeout");
  }
}

void ClientHandshake::failed(const char* context) noexcept {
  reportInternalError(Metrics::InternalError::kEventCallback, context);
  try {
    finish("internal error");
    host_.release(this);  // a no-op unless finish() had nothing to do (handed over, then failed)
  } catch (...) {
    // finish() marks this done before anything that can throw (its log
    // line): still hand it back.
    try {
      host_.release(this);
    } catch (...) {
    }
  }
}

void ClientHandshake::start() {
  if (bev_ == nullptr) {
    reportInternalError(Metrics::InternalError::kLibevent, "client handshake",
                        "cannot create the bufferevent");
    finish("cannot set up the connection");
    return;
  }
  bufferevent_setcb(bev_, onReadCb, nullptr, onEventCb, this);
  // A timer of our own rather than bufferevent timeouts: those would outlive
  // the handshake on the bufferevent that the session inherits.
  timer_ = evtimer_new(host_.base(), onTimeoutCb, this);
  const timeval timeout = timevalOf(limits_.tls_handshake_timeout);
  // Without its timer a handshake could be held open forever.
  if (timer_ == nullptr || evtimer_add(timer_, &timeout) != 0 ||
      bufferevent_enable(bev_, EV_READ | EV_WRITE) != 0) {
    reportInternalError(Metrics::InternalError::kLibevent, "client handshake",
                        "cannot arm the handshake");
    finish("cannot set up the connection");
  }
}

void ClientHandshake::finish(const char* why) {
  if (done_) return;
  done_ = true;
  if (timer_ != nullptr) evtimer_del(timer_);
  if (why != nullptr)
    log::verbose(2, "client connection dropped", {{"client", peer_address_}, {"reason", why}});
  if (bev_ != nullptr) bufferevent_disable(bev_, EV_READ | EV_WRITE);
  host_.release(this);
}

void ClientHandshake::onEventCb(bufferevent*, short what, void* p) noexcept {
  auto& h = *static_cast<ClientHandshake*>(p);
  try {
    if (what & BEV_EVENT_CONNECTED) {
      h.onReady();
    } else {
      h.finish(what & BEV_EVENT_EOF ? "closed during handshake" : "TLS handshake failed");
    }
  } catch (...) {
    h.failed("client handshake");
  }
}

void ClientHandshake::onReadCb(bufferevent*, void* p) noexcept {
  auto& h = *static_cast<ClientHandshake*>(p);
  try {
    if (h.ssl_ctx_ == nullptr) h.sniffCleartext();
  } catch (...) {
    h.failed("client handshake (cleartext)");
  }
}

void ClientHandshake::sniffCleartext() {
  evbuffer* in = bufferevent_get_input(bev_);
  const size_t have = std::min(evbuffer_get_length(in), kH2Preface.size());
  char buf[24];
  evbuffer_copyout(in, buf, have);
  const bool h2 = std::memcmp(buf, kH2Preface.data(), have) == 0;
  if (h2 && have < kH2Preface.size()) return;  // could still be the preface: wait for more
  handOver(h2, PeerInfo{peer_address_, false, h2 ? "h2c" : "http/1.1"});
}

void ClientHandshake::onReady() {
  // TLS done: ALPN decides.
  const unsigned char* alpn = nullptr;
  unsigned int len = 0;
  SSL* ssl = bufferevent_openssl_get_ssl(bev_);
  SSL_get0_alpn_selected(ssl, &alpn, &len);
  const bool h2 = len == 2 && std::memcmp(alpn, "h2", 2) == 0;
  PeerInfo peer{peer_address_, true, h2 ? "h2" : "http/1.1"};
  clientCertificateIdentity(ssl, peer.cert_user, peer.cert_groups);
  handOver(h2, std::move(peer));
}

void ClientHandshake::handOver(bool h2, PeerInfo peer) {
  evtimer_del(timer_);
  host_.metrics().connections_accepted.fetch_add(1, std::memory_order_relaxed);
  // bev_ stays ours until a session owns it, and done_ unset until then: if
  // making the session throws, failed() finishes this handshake and our
  // destructor frees bev_. start() does not throw.
  if (h2) {
    auto s = std::make_unique<Http2Session>(host_, router_, limits_, bev_, std::move(peer));
    bev_ = nullptr;
    s->slot = std::move(slot);
    Http2Session* raw = s.get();
    host_.adopt(std::move(s));
    raw->start();
  } else {
    auto s = std::make_unique<Http1Session>(host_, router_, limits_, bev_, std::move(peer));
    bev_ = nullptr;
    s->slot = std::move(slot);
    Http1Session* raw = s.get();
    host_.adopt(std::move(s));
    raw->start();
  }
  done_ = true;
  host_.release(this);
}

}  // namespace kcp::proxy
