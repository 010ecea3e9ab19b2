// A response whose whole body is known up front: errors the proxy produces
// itself and the admin endpoints.
#pragma once

#include <new>
#include <string>

#include "encoder/status.h"
#include "proxy/net/exchange.h"

namespace kcp::proxy {

class StaticResponse : public RequestHandler {
 public:
  // Submits the response on `stream` and returns the handler that serves its body.
  static RequestHandlerPtr send(DownstreamStream& stream, int code, std::string content_type,
                                std::string body);
  // A kube `Status` failure, as kube-apiserver would send it (in protobuf to
  // a client that takes it first).
  static RequestHandlerPtr sendStatus(DownstreamStream& stream, const encoder::Status& status,
                                      bool protobuf = false);

  explicit StaticResponse(std::string body) : body_(std::move(body)) {}
  void onRequestBody(const uint8_t*, size_t) override {}
  void onRequestComplete() override {}
  size_t responseBodyReady(bool* eof) override {
    *eof = true;
    return body_.size() - offset_;
  }
  void pullResponseBody(evbuffer* out, size_t n) override {
    // A body with bytes missing must never go out: the session's callback ends the stream.
    if (evbuffer_add(out, body_.data() + offset_, n) != 0) throw std::bad_alloc();
    offset_ += n;
  }
  void onDownstreamClosed() override {}

 private:
  std::string body_;
  size_t offset_ = 0;
};

}  // namespace kcp::proxy
