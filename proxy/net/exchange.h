// The two halves of one request/response exchange on the client side:
//  - DownstreamStream, implemented by the HTTP/2 and HTTP/1.1 sessions, is
//    how a handler answers;
//  - RequestHandler (the forwarder, the cache's answers, the admin endpoints) is
//    what a session feeds the request to and pulls the response body from.
// All calls happen on the thread of the session's event loop.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/request/http.h"

namespace kcp::proxy {

// What the session knows about the client, for logs and identity decisions.
struct PeerInfo {
  std::string address;  // "ip:port"
  bool tls = false;
  std::string protocol;  // "h2", "http/1.1"
  // A client certificate the TLS handshake verified against --client-ca-file:
  // the user (CN) and groups (O), as kube-apiserver reads them.
  std::string cert_user{};
  std::vector<std::string> cert_groups{};
};

class DownstreamStream {
 public:
  virtual ~DownstreamStream() = default;
  // Starts the response. When `end_stream` is false the body is pulled from
  // the handler (pullResponseBody) as the connection can write it.
  virtual void submitResponse(const ResponseHead& head, bool end_stream) = 0;
  // The handler has more response body, or its end, ready to pull.
  virtual void resumeResponse() = 0;
  // The handler has passed `n` request-body bytes on; the session may accept
  // that much more from the client (HTTP/2 WINDOW_UPDATE, HTTP/1.1 read).
  virtual void consumedRequestBody(size_t n) = 0;
  // Aborts the exchange: RST_STREAM on HTTP/2, closing the connection on
  // HTTP/1.1 (a half-sent response cannot be ended cleanly there).
  virtual void resetStream() = 0;
  virtual const PeerInfo& peer() const = 0;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Request body bytes, in order. The handler tells the session when it has
  // passed them on (consumedRequestBody), which bounds what is buffered.
  virtual void onRequestBody(const uint8_t* data, size_t len) = 0;
  virtual void onRequestComplete() = 0;
  // Bytes of response body ready now, and whether the body ends after them.
  virtual size_t responseBodyReady(bool* eof) = 0;
  // Moves exactly `n` (<= responseBodyReady) bytes of body into `out`.
  virtual void pullResponseBody(evbuffer* out, size_t n) = 0;
  // The client went away or reset the stream before the exchange finished.
  virtual void onDownstreamClosed() = 0;
};
using RequestHandlerPtr = std::unique_ptr<RequestHandler>;

// Chooses the handler for a request; owned by whoever owns the listener.
class Router {
 public:
  virtual ~Router() = default;
  virtual RequestHandlerPtr route(const RequestHead& head, DownstreamStream& stream) = 0;
};

}  // namespace kcp::proxy
