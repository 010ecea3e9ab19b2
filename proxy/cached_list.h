// A LIST answered from the cache: the selected objects of one snapshot
// spliced between the list head and tail exactly as kube-apiserver frames
// them (JSON or protobuf, whole objects or metadata only), streamed as the connection drains. Item bytes are referenced, not
// copied: each evbuffer chunk holds a reference to its object until the bytes
// are written.
#pragma once

#include <event2/buffer.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/selector.h"
#include "cache/store.h"
#include "encoder/gzip_splice.h"
#include "encoder/json_list.h"
#include "proxy/cache_manager.h"
#include "proxy/exchange.h"
#include "proxy/list_options.h"
#include "proxy/metrics.h"
#include "proxy/request_info.h"
#include "proxy/request_record.h"
#include "proxy/response_form.h"

namespace kcp::proxy {

// What one LIST reads from the cache, following kube-apiserver 1.37's watch
// cache: which snapshot, which key range, how many, which objects.
struct ListPlan {
  cache::SnapshotPtr snapshot;
  uint64_t resource_version = 0;  // of the list: the snapshot's, or the Exact one asked for
  std::string prefix;             // "namespace/" for a namespaced list, "" for all
  std::string start;              // the first key (from a continue token), or ""
  int64_t limit = 0;              // 0: everything
  cache::ObjectFilter filter;
  // Set when kube-apiserver would list from its spec.nodeName index: only
  // objects of that node count as more items after a full page.
  struct Index {
    size_t field;  // into Object::fields
    std::string value;
  };
  std::optional<Index> index;
};

// The plan for a LIST the cache can answer exactly as kube-apiserver would,
// or nullopt when the request must be forwarded: a consistent read (for now),
// a snapshot no longer held, a selector on a field the resource lacks, or
// anything kube-apiserver would refuse (its own error message then reaches
// the client).
std::optional<ListPlan> planList(const CachedResource& resource, const RequestInfo& info, const ListOptions& options);

// Whether the plan's answer (its first page) holds fewer than `bytes` of
// objects; stops walking as soon as it knows.
bool answerSmallerThan(const ListPlan& plan, size_t bytes);

// Selects one page of a plan with a limit into `page` and returns the list
// metadata for it (its continue token goes in the head of a typed list).
encoder::ListMeta selectPage(const ListPlan& plan, std::vector<cache::ObjectPtr>& page);

class CachedList : public RequestHandler {
 public:
  // Starts the response on `stream`. When zlib cannot start, the list goes
  // out uncompressed; when it fails later, the stream is reset. Both are
  // counted (kube_cache_proxy_internal_errors_total{where="zlib"}).
  CachedList(const CachedResource& resource, ListPlan plan, ResponseForm form, const RequestHead& head,
             const RequestInfo& info, DownstreamStream& stream, Metrics::Shard& metrics);
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
  cache::BTree::Cursor cursor_;  // the next object to look at (unpaged lists)
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
