// Forwards one request to kube-apiserver unchanged (hop-by-hop headers
// aside) and streams the response back, with flow control both ways: at most
// one upstream stream window of response, and one downstream window of
// request body, is ever buffered here.
#pragma once

#include <event2/buffer.h>

#include <string>

#include "proxy/handlers/request_record.h"
#include "proxy/net/exchange.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

class Forwarder : public RequestHandler, public UpstreamStreamHandler {
 public:
  // `upstream_head` is the request as it goes upstream (identity already
  // decided by the router); `info` is for logs and metrics.
  Forwarder(RequestHead upstream_head, RequestInfo info, DownstreamStream& downstream,
            UpstreamPool& pool, Metrics::Shard& metrics);
  ~Forwarder() override;

  // RequestHandler
  void onRequestBody(const uint8_t* data, size_t len) override;
  void onRequestComplete() override;
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override;

  // UpstreamStreamHandler
  void onUpstreamResponse(const ResponseHead& head, bool end_stream) override;
  void onUpstreamData(const uint8_t* data, size_t len) override;
  void onUpstreamComplete() override;
  void onUpstreamError(const std::string& reason) override;
  size_t requestBodyReady(bool* eof) override;
  void pullRequestBody(evbuffer* out, size_t n) override;

 private:
  std::string path_;
  DownstreamStream& downstream_;
  RequestRecord record_;
  UpstreamStream* upstream_ = nullptr;  // non-owning; null once the upstream stream is done
  evbuffer* request_body_;
  evbuffer* response_body_;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
};

}  // namespace kcp::proxy
