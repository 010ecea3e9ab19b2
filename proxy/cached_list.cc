#include "proxy/cached_list.h"


namespace kcp::proxy {
namespace {

constexpr size_t kChunk = 64 << 10;

void releaseObject(const void*, size_t, void* arg) { delete static_cast<cache::ObjectPtr*>(arg); }

}  // namespace

CachedList::CachedList(const CachedResource& resource, const RequestHead& head, const RequestInfo& info,
                       DownstreamStream& stream, Metrics::Shard& metrics)
    : snapshot_(resource.store->current()),
      prefix_(info.namespace_.empty() ? "" : info.namespace_ + "/"),
      frame_(encoder::jsonListFrame(resource.list_kind, resource.group_version, snapshot_->resource_version,
                                    resource.reflector->sortedListKeys())),
      staged_(evbuffer_new()),
      record_(metrics, info.verb, info.resource, head.method, head.path, "cache", stream.peer()) {
  cursor_ = snapshot_->objects.lowerBound(prefix_);
  evbuffer_add(staged_, frame_.head.data(), frame_.head.size());
  ResponseHead response;
  response.status = 200;
  response.headers = {{"cache-control", "no-cache, private"}, {"content-type", "application/json"}};
  stream.submitResponse(response, false);
}

CachedList::~CachedList() { evbuffer_free(staged_); }

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
    record_.setStatus(200);  // the whole body is on its way; before this, a hang-up counts as 499
  }
}

size_t CachedList::responseBodyReady(bool* eof) {
  if (evbuffer_get_length(staged_) == 0) refill();
  *eof = done_;
  return evbuffer_get_length(staged_);
}

void CachedList::pullResponseBody(evbuffer* out, size_t n) {
  evbuffer_remove_buffer(staged_, out, n);
  record_.addBytesOut(n);
}

}  // namespace kcp::proxy
