// A GET of one object answered from the cache, byte for byte as
// kube-apiserver answers it: the stored object with its kind and apiVersion
// put back in front, or kube-apiserver's 404 Status when it is not there.
#pragma once

#include <event2/buffer.h>

#include <optional>
#include <string>

#include "cache/store.h"
#include "proxy/cache_manager.h"
#include "proxy/exchange.h"
#include "proxy/metrics.h"
#include "proxy/request_info.h"
#include "proxy/request_record.h"
#include "proxy/response_form.h"

namespace kcp::proxy {

// The resourceVersion a GET asks for, when the cache may answer it:
// "0" (any state) or N (at least N); nullopt for anything else (no
// resourceVersion is a consistent read; other parameters change the answer).
std::optional<uint64_t> cachedGetMinResourceVersion(std::string_view query, bool* consistent);

class CachedGet : public RequestHandler {
 public:
  // Answers from `snapshot` and starts the response on `stream`.
  CachedGet(const CachedResource& resource, const cache::SnapshotPtr& snapshot, ResponseForm form,
            const RequestHead& head, const RequestInfo& info, DownstreamStream& stream, Metrics::Shard& metrics);
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
