// A request whose handler is decided later (after an upstream probe or an
// access review): until then it holds the exchange, then passes every call
// on to the handler decided. Request body that arrives meanwhile is kept and
// handed over first; it is bounded by the client's flow-control window,
// since none of it is reported consumed until the handler passes it on.
#pragma once

#include <event2/buffer.h>

#include <memory>
#include <new>

#include "proxy/net/exchange.h"

namespace kcp::proxy {

class DeferredHandler : public RequestHandler {
 public:
  void onRequestBody(const uint8_t* data, size_t len) override {
    if (inner_) {
      inner_->onRequestBody(data, len);
    } else {
      if (!pending_body_) pending_body_.reset(evbuffer_new());
      if (evbuffer_add(pending_body_.get(), data, len) != 0) throw std::bad_alloc();
    }
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
    if (pending_body_) {
      const size_t n = evbuffer_get_length(pending_body_.get());
      if (n > 0) inner_->onRequestBody(evbuffer_pullup(pending_body_.get(), -1), n);
      pending_body_.reset();
    }
    if (request_complete_) inner_->onRequestComplete();
  }
  // The client left before a decision: stop whatever is pending.
  virtual void abandon() = 0;
  bool closed() const { return closed_; }

 private:
  struct EvbufferFree {
    void operator()(evbuffer* b) const { evbuffer_free(b); }
  };
  RequestHandlerPtr inner_;
  std::unique_ptr<evbuffer, EvbufferFree> pending_body_;
  bool request_complete_ = false;
  bool closed_ = false;
};

}  // namespace kcp::proxy
