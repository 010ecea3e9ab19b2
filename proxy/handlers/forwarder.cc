#include "proxy/handlers/forwarder.h"

#include <new>

#include "config/log.h"
#include "encoder/status.h"
#include "proxy/handlers/object_bytes.h"

namespace kcp::proxy {

Forwarder::Forwarder(RequestHead upstream_head, RequestInfo info, DownstreamStream& downstream,
                     UpstreamPool& pool, Metrics::Shard& metrics)
    : path_(upstream_head.path),
      downstream_(downstream),
      record_(metrics, info.verb, info.resource, upstream_head, "upstream", downstream.peer()),
      request_body_(evbuffer_new()),
      response_body_(evbuffer_new()) {
  if (request_body_ == nullptr || response_body_ == nullptr) {
    if (request_body_ != nullptr) evbuffer_free(request_body_);
    if (response_body_ != nullptr) evbuffer_free(response_body_);
    throw std::bad_alloc();  // no destructor runs for a constructor that throws
  }
  request_complete_ = upstream_head.end_stream;
  upstream_ = pool.submit(std::move(upstream_head), this);
}

Forwarder::~Forwarder() {
  if (upstream_ != nullptr) upstream_->cancel();
  evbuffer_free(request_body_);
  evbuffer_free(response_body_);
}

void Forwarder::onRequestBody(const uint8_t* data, size_t len) {
  record_.addBytesIn(len);
  if (upstream_ == nullptr) {  // nowhere to send it: let the client go on
    downstream_.consumedRequestBody(len);
    return;
  }
  appendBytes(request_body_, std::string_view(reinterpret_cast<const char*>(data), len));
  upstream_->resumeRequestBody();
}

void Forwarder::onRequestComplete() {
  request_complete_ = true;
  if (upstream_ != nullptr) upstream_->resumeRequestBody();
}

size_t Forwarder::requestBodyReady(bool* eof) {
  *eof = request_complete_;
  return evbuffer_get_length(request_body_);
}

void Forwarder::pullRequestBody(evbuffer* out, size_t n) {
  moveBytes(request_body_, out, n);
  downstream_.consumedRequestBody(n);
}

void Forwarder::onUpstreamResponse(const ResponseHead& head, bool end_stream) {
  response_started_ = true;
  record_.setStatus(head.status);
  ResponseHead down = head;
  std::erase_if(down.headers, [](const Header& h) { return isHopByHop(h.name); });
  downstream_.submitResponse(down, end_stream);
}

void Forwarder::onUpstreamData(const uint8_t* data, size_t len) {
  appendBytes(response_body_, std::string_view(reinterpret_cast<const char*>(data), len));
  downstream_.resumeResponse();
}

void Forwarder::onUpstreamComplete() {
  upstream_ = nullptr;
  response_complete_ = true;
  downstream_.resumeResponse();
}

void Forwarder::onUpstreamError(const std::string& reason) {
  upstream_ = nullptr;
  if (response_started_) {
    // Part of the response is out: all we can do is make the client see the
    // break, never a silently truncated body.
    log::warning("upstream stream failed mid-response", {{"path", path_}, {"reason", reason}});
    downstream_.resetStream();
    return;
  }
  log::warning("upstream unavailable",
               {{"path", path_}, {"reason", reason}, {"client", downstream_.peer().address}});
  const std::string body =
      encoder::statusJson({503,
                           "ServiceUnavailable",
                           "the kube-apiserver behind kube-cache-proxy is unavailable: " + reason,
                           {}});
  appendBytes(response_body_, body);
  response_started_ = true;
  response_complete_ = true;
  record_.setStatus(503);
  ResponseHead head;
  head.status = 503;
  head.content_length = int64_t(body.size());
  head.headers = {{"content-type", "application/json"},
                  {"cache-control", "no-cache, private"},
                  {"content-length", std::to_string(body.size())}};
  downstream_.submitResponse(head, false);
}

size_t Forwarder::responseBodyReady(bool* eof) {
  *eof = response_complete_;
  return evbuffer_get_length(response_body_);
}

void Forwarder::pullResponseBody(evbuffer* out, size_t n) {
  moveBytes(response_body_, out, n);
  record_.addBytesOut(n);
  if (upstream_ != nullptr) upstream_->consume(n);
}

void Forwarder::onDownstreamClosed() {
  if (upstream_ != nullptr) {
    upstream_->cancel();
    upstream_ = nullptr;
  }
}

}  // namespace kcp::proxy
