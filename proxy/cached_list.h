// A LIST answered from the cache: the snapshot's objects spliced between the
// list head and tail exactly as kube-apiserver frames them, streamed as the
// connection drains. Item bytes are referenced, not copied: each evbuffer
// chunk holds a reference to its object until the bytes are written.
#pragma once

#include <event2/buffer.h>

#include <string>

#include "cache/store.h"
#include "encoder/json_list.h"
#include "proxy/cache_manager.h"
#include "proxy/exchange.h"
#include "proxy/metrics.h"
#include "proxy/request_info.h"
#include "proxy/request_record.h"

namespace kcp::proxy {

class CachedList : public RequestHandler {
 public:
  // Lists `resource` (in the request's namespace, or everywhere) as of the
  // current snapshot, and submits the response on `stream`.
  CachedList(const CachedResource& resource, const RequestHead& head, const RequestInfo& info,
             DownstreamStream& stream, Metrics::Shard& metrics);
  ~CachedList() override;

  void onRequestBody(const uint8_t*, size_t) override {}
  void onRequestComplete() override {}
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override {}

 private:
  void refill();

  cache::SnapshotPtr snapshot_;
  cache::BTree::Cursor cursor_;
  std::string prefix_;  // "ns/" for a namespaced list, "" for all
  encoder::JsonListFrame frame_;
  evbuffer* staged_;  // the next bytes to write, at most a chunk or so
  bool first_item_ = true;
  bool done_ = false;
  RequestRecord record_;
};

}  // namespace kcp::proxy
