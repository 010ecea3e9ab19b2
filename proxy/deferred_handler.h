// A request whose handler is decided later (after an upstream probe or an
// access review): until then it holds the exchange, then passes every call
// on to the handler decided. The request body is not buffered: only bodiless
// requests (reads) are deferred.
#pragma once

#include "proxy/exchange.h"

namespace kcp::proxy {

class DeferredHandler : public RequestHandler {
 public:
  void onRequestBody(const uint8_t* data, size_t len) override {
    if (inner_) inner_->onRequestBody(data, len);
  }
  void onRequestComplete() override {
    request_complete_ = true;
    if (inner_) inner_->onRequestComplete();
  }
  size_t responseBodyReady(bool* eof) override {
    if (inner_) return inner_->responseBodyReady(eof);
    *eof = false;
    return 0;
  }
  void pullResponseBody(evbuffer* out, size_t n) override {
    if (inner_) inner_->pullResponseBody(out, n);
  }
  void onDownstreamClosed() override {
    closed_ = true;
    if (inner_) {
      inner_->onDownstreamClosed();
    } else {
      abandon();
    }
  }

 protected:
  // Hands the exchange to `handler` (whose constructor has submitted the response).
  void decide(RequestHandlerPtr handler) {
    inner_ = std::move(handler);
    if (request_complete_) inner_->onRequestComplete();
  }
  // The client left before a decision: stop whatever is pending.
  virtual void abandon() = 0;
  bool closed() const { return closed_; }

 private:
  RequestHandlerPtr inner_;
  bool request_complete_ = false;
  bool closed_ = false;
};

}  // namespace kcp::proxy
