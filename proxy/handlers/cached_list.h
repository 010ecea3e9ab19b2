// A LIST answered from the cache: the selected objects of one snapshot
// spliced between the list head and tail exactly as kube-apiserver frames
// them (JSON or protobuf, whole objects or metadata only), streamed as the connection drains. Item
// bytes are referenced, not copied: each evbuffer chunk holds a reference to its object until the
// bytes are written.
#pragma once

#include <event2/buffer.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "encoder/gzip_splice.h"
#include "encoder/json_list.h"
#include "proxy/handlers/request_record.h"
#include "proxy/net/exchange.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"
#include "proxy/request/response_form.h"
#include "proxy/serving/cached_resource.h"
#include "proxy/serving/list_plan.h"

namespace kcp::proxy {

class CachedList : public RequestHandler {
 public:
  // Starts the response on `stream`. When zlib cannot start, the list goes
  // out uncompressed; when it fails later, the stream is reset. Both are
  // counted (kube_cache_proxy_internal_errors_total{where="zlib"}).
  CachedList(const CachedResource& resource, ListPlan plan, ResponseForm form,
             const RequestHead& head, const RequestInfo& info, DownstreamStream& stream,
             Metrics::Shard& metrics);
  ~CachedList() override;

  void onRequestBody(const uint8_t*, size_t) override {}
  void onRequestComplete() override {}
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override {}

 private:
  class Sink;
  // The constructor's work, once staged_ exists.
  void start(const CachedResource& resource, const RequestHead& head);
  void add(const cache::ObjectPtr& object);
  void addObject(const cache::ObjectPtr& object, std::string_view bytes);
  void addLeaf(const cache::BTree::Node* leaf);
  void addBytes(std::string_view bytes);
  void refill();
  size_t itemSize(const cache::Object& object) const;
  // The selected items' encoded size, or some size over `enough` once past it.
  size_t itemsSize(size_t enough) const;
  bool anySelected() const;

  DownstreamStream& stream_;
  ListPlan plan_;
  bool metadata_only_;
  bool protobuf_;
  cache::BTree::Cursor cursor_;         // the next object to look at (unpaged lists)
  std::vector<cache::ObjectPtr> page_;  // the selected objects (paged lists)
  size_t page_next_ = 0;
  bool paged_ = false;
  encoder::ListFrame frame_;
  evbuffer* staged_;  // the next bytes to write, at most a chunk or so
  bool first_item_ = true;
  bool done_ = false;
  bool failed_ = false;  // zlib failed mid-body: the stream was reset, nothing more is sent
  // Set when the response is gzipped (the client accepts it and the body is
  // over kube-apiserver's threshold): whole leaves are spliced in as their
  // pre-compressed fragments, the rest is compressed as it goes.
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<encoder::GzipWriter> gzip_;
  RequestRecord record_;
};

}  // namespace kcp::proxy
