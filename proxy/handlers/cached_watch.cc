#include "proxy/handlers/cached_watch.h"

#include <new>

#include "cache/json_scan.h"
#include "cache/protobuf.h"
#include "encoder/gzip_splice.h"
#include "encoder/json_list.h"
#include "encoder/protobuf_frames.h"
#include "encoder/watch_event.h"
#include "proxy/handlers/object_bytes.h"
#include "proxy/net/event_loop.h"

namespace kcp::proxy {
namespace {

constexpr size_t kChunk = 64 << 10;
constexpr size_t kBatch = 256;
constexpr std::chrono::seconds kBookmarkPeriod{60};  // kube-apiserver's bookmark frequency

}  // namespace

CachedWatch::CachedWatch(std::shared_ptr<const CachedResource> resource, WatchPlan plan,
                         ResponseForm form, WatchFeed& feed, event_base* base,
                         const RequestHead& head, const RequestInfo& info, DownstreamStream& stream,
                         Metrics::Shard& metrics)
    : held_(std::move(resource)),
      resource_(*held_),
      plan_(std::move(plan)),
      form_(form),
      protobuf_(form.encoding == cache::Encoding::kProtobuf),
      feed_(feed),
      stream_(stream),
      position_(plan_.from),
      staged_(evbuffer_new()),
      deadline_(evtimer_new(base, onDeadline, this)),
      bookmark_timer_(evtimer_new(base, onBookmarkDue, this)),
      record_(metrics, info.verb, info.resource, head, "cache", stream.peer()) {
  try {
    if (staged_ == nullptr || deadline_ == nullptr || bookmark_timer_ == nullptr)
      throw std::bad_alloc();
    record_.audit(info);
    start(head);
  } catch (...) {
    // No destructor runs for a constructor that throws: undo what it did.
    feed_.remove(this);
    if (deadline_ != nullptr) event_free(deadline_);
    if (bookmark_timer_ != nullptr) event_free(bookmark_timer_);
    if (staged_ != nullptr) evbuffer_free(staged_);
    if (compressed_ != nullptr) evbuffer_free(compressed_);
    throw;
  }
}

void CachedWatch::start(const RequestHead& head) {
  if (protobuf_) {
    bookmark_template_ = resource_.reflector->bookmarkTemplate();
  } else if (!resource_.reflector->sortedListKeys()) {
    type_meta_ = cache::typeMetaPrefix(resource_.kind, resource_.group_version);
  }
  if (plan_.initial) {
    initial_ = plan_.initial->objects.lowerBound(plan_.prefix);
  } else {
    initial_done_ = true;
  }
  ResponseHead response;
  response.status = 200;
  response.headers = {{"cache-control", "no-cache, private"},
                      {"content-type", protobuf_ ? std::string(cache::protobuf::kWatchContentType)
                                                 : "application/json"}};
  // kube-apiserver's test is on the options as defaulted: sendInitialEvents
  // and allowWatchBookmarks, which is when the plan ends the initial events.
  const std::string* accept_encoding = head.header("accept-encoding");
  if (plan_.initial_events_end && accept_encoding != nullptr &&
      encoder::acceptsGzip(*accept_encoding)) {
    compressed_ = evbuffer_new();
    if (compressed_ == nullptr) throw std::bad_alloc();
    gzip_ = true;
    response.headers.push_back({"content-encoding", "gzip"});
    response.headers.push_back({"vary", "Accept-Encoding"});
  }
  record_.setStatus(200);
  if (plan_.expired != 0) {
    // As kube-apiserver's watch cache: the watch starts, and its only event is the 410.
    const std::string e = encoder::jsonErrorEvent(
        {410, "Expired",
         "too old resource version: " + std::to_string(plan_.expired) + " (" +
             std::to_string(resource_.store->oldestResourceVersion()) + ")"});
    appendBytes(staged_, e);
    done_ = true;
  } else {
    feed_.add(this);
    deadline_at_ = std::chrono::steady_clock::now() + plan_.timeout;
    const timeval tv =
        timevalOf(std::chrono::duration_cast<std::chrono::milliseconds>(plan_.timeout));
    if (evtimer_add(deadline_, &tv) != 0) {
      // A watch that could never time out: end it at once (the client resumes).
      reportInternalError(Metrics::InternalError::kLibevent, "cached WATCH deadline",
                          "evtimer_add failed");
      done_ = true;
    } else if (plan_.bookmarks) {
      scheduleBookmark();
    }
  }
  stream_.submitResponse(response, false);
}

CachedWatch::~CachedWatch() {
  feed_.remove(this);
  event_free(deadline_);
  event_free(bookmark_timer_);
  evbuffer_free(staged_);
  if (compressed_ != nullptr) evbuffer_free(compressed_);
}

void CachedWatch::scheduleBookmark() {
  // Every minute, and once more shortly before the deadline, as kube-apiserver.
  const auto now = std::chrono::steady_clock::now();
  auto next = now + kBookmarkPeriod;
  if (const auto pre_deadline = deadline_at_ - std::chrono::seconds(2); pre_deadline < next)
    next = pre_deadline;
  if (next < now) return;
  const timeval tv = timevalOf(std::chrono::duration_cast<std::chrono::milliseconds>(next - now));
  if (evtimer_add(bookmark_timer_, &tv) != 0) {
    // Bookmarks are an optimisation for the client: the watch goes on without them.
    reportInternalError(Metrics::InternalError::kLibevent, "cached WATCH bookmark timer",
                        "evtimer_add failed");
  }
}

void CachedWatch::onDeadline(evutil_socket_t, short, void* self) noexcept {
  auto* w = static_cast<CachedWatch*>(self);
  try {
    w->done_ = true;
    w->wake();
  } catch (...) {
    w->failed("cached WATCH deadline");
  }
}

void CachedWatch::onBookmarkDue(evutil_socket_t, short, void* self) noexcept {
  auto* w = static_cast<CachedWatch*>(self);
  try {
    w->bookmark_due_ = true;
    w->wake();
    w->scheduleBookmark();
  } catch (...) {
    w->failed("cached WATCH bookmark");
  }
}

void CachedWatch::failed(const char* context) noexcept {
  reportInternalError(Metrics::InternalError::kEventCallback, context);
  done_ = true;
  try {
    stream_.resetStream();
  } catch (...) {
    // The session's own close failed: nothing more to do from here.
  }
}

void CachedWatch::wake() {
  if (waiting_) {
    waiting_ = false;
    stream_.resumeResponse();
  }
}

void CachedWatch::onStoreChanged() {
  try {
    wake();
  } catch (...) {
    failed("cached WATCH wake-up");
  }
}

bool CachedWatch::selected(const cache::ObjectPtr& object) const {
  return object != nullptr && std::string_view(object->key).starts_with(plan_.prefix) &&
         (plan_.filter.empty() || plan_.filter.matches(*object));
}

void CachedWatch::addObject(std::string_view type, const cache::ObjectPtr& object) {
  if (protobuf_) {
    const std::string_view bytes = protobufObjectBytes(*object, form_.metadata_only);
    const std::string head =
        form_.metadata_only ? encoder::protobufWatchEventHead(type, "meta.k8s.io/v1",
                                                              "PartialObjectMetadata", bytes.size())
                            : encoder::protobufWatchEventHead(type, resource_.group_version,
                                                              resource_.kind, bytes.size());
    appendBytes(staged_, head);
    addObjectBytes(staged_, object, bytes);
    appendBytes(staged_, cache::protobuf::kEnvelopeTail);
    return;
  }
  const std::string head = encoder::jsonWatchEventHead(type);
  appendBytes(staged_, head);
  addSingleObject(staged_, object, form_, type_meta_);
  appendBytes(staged_, encoder::kJsonWatchEventTail);
}

void CachedWatch::addEvent(const cache::Event& e) {
  // As kube-apiserver's cacheWatcher: what the watcher sees depends on whether
  // the object was selected before and after the change.
  const bool now_selected = e.type != cache::EventType::kDeleted && selected(e.object);
  const bool was_selected = selected(e.type == cache::EventType::kDeleted ? e.object : e.previous);
  if (now_selected) {
    addObject(was_selected ? "MODIFIED" : "ADDED", e.object);
  } else if (was_selected && e.type == cache::EventType::kDeleted) {
    addObject("DELETED", e.object);  // already the last state at the deletion's resourceVersion
  } else if (was_selected) {
    // Left the selection: its previous state, at this event's resourceVersion
    // (rewritten in the store's encoding: a custom resource's metadata-only
    // protobuf is made from its JSON).
    if (resource_.encoding == cache::Encoding::kProtobuf) {
      if (auto moved =
              cache::protobuf::withResourceVersion(e.previous->bytes, e.resource_version)) {
        if (auto gone = cache::protobuf::parseObject(std::move(*moved), nullptr))
          addObject("DELETED", gone);
      }
    } else if (auto moved = cache::withResourceVersion(e.previous->bytes, e.resource_version)) {
      auto gone = std::make_shared<cache::Object>(*e.previous);
      gone->bytes = std::move(*moved);
      gone->metadata_end = uint32_t(cache::metadataEnd(gone->bytes));
      addObject("DELETED", gone);
    }
  }
}

void CachedWatch::refill() {
  if (resource_.gone.load(std::memory_order_relaxed)) {
    done_ = true;  // the resource went away upstream: the watch ends, as kube-apiserver ends it
    return;
  }
  while (!initial_done_ && evbuffer_get_length(staged_) < kChunk) {
    if (!initial_.valid() || !std::string_view(initial_.object()->key).starts_with(plan_.prefix)) {
      initial_done_ = true;
      if (plan_.initial_events_end) addBookmark(plan_.from, true);
      break;
    }
    if (plan_.filter.empty() || plan_.filter.matches(*initial_.object()))
      addObject("ADDED", initial_.object());
    initial_.next();
  }
  while (initial_done_ && !done_ && evbuffer_get_length(staged_) < kChunk) {
    batch_.clear();
    uint64_t current = 0;
    if (!resource_.store->eventsAfter(position_, kBatch, batch_, &current)) {
      done_ =
          true;  // fell behind the history (or the cache relisted): the client resumes or relists
      resource_.watchers_too_slow.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    for (const auto& e : batch_) {
      addEvent(*e);
      position_ = e->resource_version;
    }
    if (batch_.size() < kBatch) {
      position_ =
          std::max(position_, current);  // nothing else happened up to the store's resourceVersion
      break;
    }
  }
  if (bookmark_due_ && initial_done_ && !done_ && evbuffer_get_length(staged_) == 0) {
    bookmark_due_ = false;
    if (position_ > last_bookmark_ && position_ > plan_.from) addBookmark(position_, false);
  }
}

void CachedWatch::addBookmark(uint64_t rv, bool initial_events_end) {
  last_bookmark_ = rv;
  if (protobuf_) {
    // kube-apiserver's bookmark: an empty object of the kind (or an empty
    // PartialObjectMetadata) with the resourceVersion, and the annotation.
    // A custom resource (a JSON store) has no template, and needs none for
    // metadata only: its ObjectMeta at the zero values gogo writes.
    static const std::string kEmptyMetadata = cache::emptyObjectMetaField();
    std::string_view empty = form_.metadata_only && resource_.encoding == cache::Encoding::kJson
                                 ? std::string_view(kEmptyMetadata)
                                 : std::string_view(*bookmark_template_);
    if (form_.metadata_only) empty = cache::protobuf::metadataField(empty);
    auto annotation = initial_events_end
                          ? std::optional(std::pair<std::string_view, std::string_view>(
                                "k8s.io/initial-events-end", "true"))
                          : std::nullopt;
    auto object = cache::protobuf::withResourceVersion(empty, rv, annotation);
    if (!object) return;
    auto bookmark = std::make_shared<cache::Object>();
    bookmark->bytes = std::move(*object);
    bookmark->metadata_end =
        uint32_t(bookmark->bytes.size());  // field 1 only, in the metadata-only form
    addObject("BOOKMARK", bookmark);
    return;
  }
  const std::string b =
      form_.metadata_only
          ? encoder::jsonBookmarkEvent("PartialObjectMetadata", "meta.k8s.io/v1", rv, false,
                                       initial_events_end)
          : encoder::jsonBookmarkEvent(resource_.kind, resource_.group_version, rv,
                                       resource_.reflector->sortedListKeys(), initial_events_end);
  appendBytes(staged_, b);
}

size_t CachedWatch::responseBodyReady(bool* eof) {
  evbuffer* out = gzip_ ? compressed_ : staged_;
  if (evbuffer_get_length(out) == 0) {
    if (evbuffer_get_length(staged_) == 0 && !done_) refill();
    if (gzip_ && evbuffer_get_length(staged_) > 0) compressStaged();
  }
  const size_t n = evbuffer_get_length(out);
  *eof = done_ && n == 0;
  if (n == 0 && !done_) waiting_ = true;
  return n;
}

namespace {

// Gzip output into an evbuffer (copied: a member is compressed bytes of its own).
class EvbufferGzipSink : public encoder::GzipSink {
 public:
  explicit EvbufferGzipSink(evbuffer* out) : out_(out) {}
  void write(std::string_view bytes) override { appendBytes(out_, bytes); }
  void writeFragment(const encoder::DeflateFragmentPtr& f) override { write(f->deflated); }

 private:
  evbuffer* out_;
};

}  // namespace

void CachedWatch::compressStaged() {
  const size_t length = evbuffer_get_length(staged_);
  const int n = evbuffer_peek(staged_, -1, nullptr, nullptr, 0);
  std::vector<evbuffer_iovec> chunks(size_t(std::max(n, 0)));
  evbuffer_peek(staged_, -1, nullptr, chunks.data(), n);
  std::vector<std::string_view> pieces;
  pieces.reserve(chunks.size());
  for (const auto& c : chunks) pieces.emplace_back(static_cast<const char*>(c.iov_base), c.iov_len);
  EvbufferGzipSink sink(compressed_);
  encoder::gzipMember(pieces, sink);
  evbuffer_drain(staged_, length);  // releases the objects' bytes it referenced
}

void CachedWatch::pullResponseBody(evbuffer* out, size_t n) {
  moveBytes(gzip_ ? compressed_ : staged_, out, n);
  record_.addBytesOut(n);
}

}  // namespace kcp::proxy
