// A GET of one object answered from the cache, byte for byte as
// kube-apiserver answers it: the stored object with its kind and apiVersion
// put back in front, or kube-apiserver's 404 Status when it is not there.
#pragma once

#include <event2/buffer.h>

#include <optional>
#include <string>

#include "cache/store.h"
#include "proxy/handlers/request_record.h"
#include "proxy/net/exchange.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"
#include "proxy/request/response_form.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

class CachedGet : public RequestHandler {
 public:
  // Answers from `snapshot` and starts the response on `stream`.
  CachedGet(const CachedResource& resource, const cache::SnapshotPtr& snapshot, ResponseForm form,
            const RequestHead& head, const RequestInfo& info, DownstreamStream& stream,
            Metrics::Shard& metrics);
  ~CachedGet() override;

  void onRequestBody(const uint8_t*, size_t) override {}
  void onRequestComplete() override {}
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override {}

 private:
  evbuffer* body_;
  RequestRecord record_;
};

}  // namespace kcp::proxy
