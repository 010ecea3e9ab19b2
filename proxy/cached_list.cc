#include "proxy/cached_list.h"

#include "config/log.h"

namespace kcp::proxy {
namespace {

constexpr size_t kChunk = 64 << 10;

void releaseObject(const void*, size_t, void* arg) { delete static_cast<cache::ObjectPtr*>(arg); }

}  // namespace

CachedList::CachedList(const CachedResource& resource, const std::string& namespace_, DownstreamStream& stream,
                       Metrics::Shard& metrics, std::string path)
    : snapshot_(resource.store->current()),
      prefix_(namespace_.empty() ? "" : namespace_ + "/"),
      frame_(encoder::jsonListFrame(resource.list_kind, resource.group_version, snapshot_->resource_version,
                                    resource.reflector->sortedListKeys())),
      staged_(evbuffer_new()),
      metrics_(metrics),
      path_(std::move(path)),
      start_(std::chrono::steady_clock::now()) {
  metrics_.in_flight.fetch_add(1, std::memory_order_relaxed);
  cursor_ = snapshot_->objects.lowerBound(prefix_);
  evbuffer_add(staged_, frame_.head.data(), frame_.head.size());
  ResponseHead head;
  head.status = 200;
  head.headers = {{"cache-control", "no-cache, private"}, {"content-type", "application/json"}};
  stream.submitResponse(head, false);
}

CachedList::~CachedList() {
  evbuffer_free(staged_);
  metrics_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  metrics_.recordRequest("list", "", done_ ? 200 : 499, "cache", seconds, 0, bytes_out_);
  log::verbose(1, "request", {{"verb", "list"}, {"path", path_}, {"code", done_ ? "200" : "499"},
                              {"served_from", "cache"}, {"bytes_out", std::to_string(bytes_out_)},
                              {"ms", std::to_string(int64_t(seconds * 1000))}});
}

void CachedList::refill() {
  while (evbuffer_get_length(staged_) < kChunk && cursor_.valid()) {
    const cache::ObjectPtr& obj = cursor_.object();
    if (!prefix_.empty() && !std::string_view(obj->key).starts_with(prefix_)) {
      cursor_ = cache::BTree::Cursor();  // past this namespace
      break;
    }
    if (!first_item_) evbuffer_add(staged_, ",", 1);
    first_item_ = false;
    evbuffer_add_reference(staged_, obj->json.data(), obj->json.size(), releaseObject, new cache::ObjectPtr(obj));
    cursor_.next();
  }
  if (!cursor_.valid() && !done_) {
    evbuffer_add(staged_, frame_.tail.data(), frame_.tail.size());
    done_ = true;
  }
}

size_t CachedList::responseBodyReady(bool* eof) {
  if (evbuffer_get_length(staged_) == 0) refill();
  *eof = done_;
  return evbuffer_get_length(staged_);
}

void CachedList::pullResponseBody(evbuffer* out, size_t n) {
  evbuffer_remove_buffer(staged_, out, n);
  bytes_out_ += n;
}

}  // namespace kcp::proxy
