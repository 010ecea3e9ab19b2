// A client connection speaking HTTP/1.1 (TLS with ALPN http/1.1 or none, or
// cleartext), parsed with http-parser. Keep-alive, chunked transfer both
// ways, one request at a time (pipelined requests wait in the socket).
#pragma once

#include <event2/bufferevent.h>
#include <http_parser.h>

#include <memory>
#include <string>

#include "proxy/net/exchange.h"
#include "proxy/net/session.h"

namespace kcp::proxy {

class Http1Session : public Session, public DownstreamStream {
 public:
  // Takes ownership of `bev`; bytes already in its input buffer are the start
  // of the connection.
  Http1Session(SessionHost& host, Router& router, const ClientLimits& limits, bufferevent* bev,
               PeerInfo peer);
  ~Http1Session() override;

  // Processes what is already buffered. Never throws: a failure closes the
  // connection.
  void start();
  void drain() override;
  size_t activeRequests() const override { return handler_ ? 1 : 0; }

  // DownstreamStream
  void submitResponse(const ResponseHead& head, bool end_stream) override;
  void resumeResponse() override;
  void consumedRequestBody(size_t n) override;
  void resetStream() override;
  const PeerInfo& peer() const override { return peer_; }

 private:
  void onRead();
  void onWrite();
  void pump();
  void finishExchange();
  void close(const char* why);
  void fail(int code, const char* reason, const std::string& message);
  void resetRequestState();
  // An internal failure (see reportInternalError) where nothing may throw:
  // counted, logged, and the connection closed (`detail` null inside a
  // catch block); even when close() itself throws, the session is handed back.
  void failConnection(Metrics::InternalError where, const char* context,
                      const char* detail = nullptr) noexcept;
  void closeAfterFailure(const char* why) noexcept;
  // A parser callback's exception: reported, and the parse stops with an
  // error. Returns what the callback returns.
  int parserFailed(const char* callback) noexcept;

  static Http1Session& self(void* p) { return *static_cast<Http1Session*>(p); }
  static Http1Session& self(http_parser* p) { return *static_cast<Http1Session*>(p->data); }
  static void onReadCb(bufferevent*, void* p) noexcept;
  static void onWriteCb(bufferevent*, void* p) noexcept;
  static void onEventCb(bufferevent*, short what, void* p) noexcept;
  static void onPumpCb(evutil_socket_t, short, void* p) noexcept;
  static void onWaitTimeoutCb(evutil_socket_t, short, void* p) noexcept;
  // Arms the timer for a connection waiting for a request (idle) or for the
  // rest of a request head (header timeout).
  void awaitRequest(bool head_started);

  static int onMessageBegin(http_parser* p) noexcept;
  static int onUrl(http_parser* p, const char* at, size_t len) noexcept;
  static int onHeaderField(http_parser* p, const char* at, size_t len) noexcept;
  static int onHeaderValue(http_parser* p, const char* at, size_t len) noexcept;
  static int onHeadersComplete(http_parser* p) noexcept;
  static int onBody(http_parser* p, const char* at, size_t len) noexcept;
  static int onMessageComplete(http_parser* p) noexcept;
  bool countHeaderBytes(size_t len);

  SessionHost& host_;
  Router& router_;
  ClientLimits limits_;
  bufferevent* bev_;
  PeerInfo peer_;
  http_parser parser_;
  http_parser_settings settings_;
  event* pump_ev_;
  event* wait_timer_;
  bool head_started_ = false;  // the timer runs for a request head, not idleness

  // The request being parsed / served.
  RequestHead head_;
  std::string header_name_;
  bool last_was_value_ = false;
  int64_t header_bytes_ = 0;
  int64_t header_count_ = 0;
  bool too_large_ = false;
  std::string bad_request_;  // why onHeadersComplete refused the request (a 400)
  // A parser callback failed internally (and reported it): the connection ends.
  bool internal_error_ = false;
  RequestHandlerPtr handler_;
  bool request_complete_ = false;
  size_t request_body_outstanding_ = 0;  // given to the handler, not yet passed on
  int64_t request_body_bytes_ = 0;       // of this request so far (limit: max_request_body_bytes)
  bool body_too_large_ = false;
  bool keep_alive_ = true;
  bool head_request_ = false;

  // The response being written.
  bool response_started_ = false;
  bool chunked_ = false;
  bool body_allowed_ = true;
  bool response_complete_ = false;

  bool tunnel_ = false;  // upgraded: both directions are raw bytes
  bool raw_response_ = false;
  bool draining_ = false;
  bool close_after_write_ = false;
  bool closing_ = false;
};

}  // namespace kcp::proxy
