#include "proxy/handlers/cached_list.h"

#include <new>

#include "cache/protobuf.h"
#include "encoder/protobuf_frames.h"
#include "proxy/handlers/object_bytes.h"

namespace kcp::proxy {
namespace {

constexpr size_t kChunk = 64 << 10;

}  // namespace

// GzipSink over the staged evbuffer: fragments go by reference, held until
// written. Throws std::bad_alloc when libevent cannot take the bytes.
class CachedList::Sink : public encoder::GzipSink {
 public:
  explicit Sink(evbuffer* out) : out_(out) {}
  void write(std::string_view bytes) override { appendBytes(out_, bytes); }
  void writeFragment(const encoder::DeflateFragmentPtr& f) override {
    auto* hold = new encoder::DeflateFragmentPtr(f);
    if (evbuffer_add_reference(out_, f->deflated.data(), f->deflated.size(), releaseFragment,
                               hold) != 0) {
      delete hold;  // libevent calls the cleanup only for a reference it took
      throw std::bad_alloc();
    }
  }

 private:
  // libevent's cleanup for a written fragment: dropping a reference cannot throw.
  static void releaseFragment(const void*, size_t, void* arg) noexcept {
    delete static_cast<encoder::DeflateFragmentPtr*>(arg);
  }
  evbuffer* out_;
};

CachedList::CachedList(const CachedResource& resource, ListPlan plan, ResponseForm form,
                       const RequestHead& head, const RequestInfo& info, DownstreamStream& stream,
                       Metrics::Shard& metrics)
    : stream_(stream),
      plan_(std::move(plan)),
      metadata_only_(form.metadata_only),
      protobuf_(form.encoding == cache::Encoding::kProtobuf),
      staged_(evbuffer_new()),
      record_(metrics, info.verb, info.resource, head, "cache", stream.peer()) {
  if (staged_ == nullptr) throw std::bad_alloc();
  try {
    record_.audit(info);
    start(resource, head);
  } catch (...) {
    evbuffer_free(staged_);  // no destructor runs for a constructor that throws
    throw;
  }
}

void CachedList::start(const CachedResource& resource, const RequestHead& head) {
  encoder::ListMeta meta{plan_.resource_version};
  if (plan_.limit > 0) {
    paged_ = true;
    meta = selectPage(plan_, page_);
  } else {
    cursor_ = plan_.snapshot->objects.lowerBound(plan_.start.empty() ? plan_.prefix : plan_.start);
  }
  const std::string_view list_kind =
      metadata_only_ ? std::string_view("PartialObjectMetadataList") : resource.list_kind;
  const std::string_view api_version =
      metadata_only_ ? std::string_view("meta.k8s.io/v1") : resource.group_version;
  size_t identity_size;
  if (protobuf_) {
    // Protobuf sizes the items up front (the envelope's length comes first).
    const size_t items = itemsSize(SIZE_MAX);
    frame_ = encoder::protobufListFrame(list_kind, api_version, meta, items);
    identity_size = frame_.head.size() + items + frame_.tail.size();
  } else {
    frame_ = encoder::jsonListFrame(list_kind, api_version, meta,
                                    !metadata_only_ && resource.reflector->sortedListKeys());
    if (metadata_only_ && !anySelected()) {
      // kube-apiserver's conversion to PartialObjectMetadataList leaves no items as null.
      frame_.head.back() = 'n';
      frame_.head += "ull";
      frame_.tail.erase(0, 1);
    }
    identity_size =
        frame_.head.size() + frame_.tail.size() + itemsSize(encoder::kGzipThresholdBytes);
  }
  ResponseHead response;
  response.status = 200;
  response.headers = {{"cache-control", "no-cache, private"},
                      {"content-type", protobuf_ ? std::string(cache::protobuf::kContentType)
                                                 : "application/json"}};
  // As kube-apiserver: gzip when asked for and the body is over 128 KiB.
  const std::string* accept_encoding = head.header("accept-encoding");
  if (accept_encoding != nullptr && encoder::acceptsGzip(*accept_encoding) &&
      identity_size > encoder::kGzipThresholdBytes) {
    try {
      auto sink = std::make_unique<Sink>(staged_);
      gzip_ = std::make_unique<encoder::GzipWriter>(*sink);
      sink_ = std::move(sink);
      response.headers.push_back({"content-encoding", "gzip"});
      response.headers.push_back({"vary", "Accept-Encoding"});
    } catch (const encoder::ZlibError& e) {
      // Nothing written yet: the same list, uncompressed, is as good an answer.
      reportInternalError(Metrics::InternalError::kZlib, "cached LIST gzip", e.what());
    }
  }
  addBytes(frame_.head);
  stream_.submitResponse(response, false);
}

bool CachedList::anySelected() const {
  if (paged_) return !page_.empty();
  for (auto c = cursor_; c.valid() && std::string_view(c.object()->key).starts_with(plan_.prefix);
       c.next()) {
    if (plan_.filter.empty() || plan_.filter.matches(*c.object())) return true;
  }
  return false;
}

size_t CachedList::itemSize(const cache::Object& o) const {
  if (protobuf_) return encoder::protobufItemSize(protobufObjectBytes(o, metadata_only_).size());
  return metadata_only_ ? encoder::kPartialObjectMetadataPrefix.size() + metadataJson(o).size() + 1
                        : o.bytes.size();
}

size_t CachedList::itemsSize(size_t enough) const {
  size_t n = 0, items = 0;
  const auto count = [&](const cache::Object& o) {
    n += itemSize(o);
    ++items;
  };
  if (paged_) {
    for (const auto& o : page_) count(*o);
  } else {
    for (auto c = cursor_; c.valid() && std::string_view(c.object()->key).starts_with(plan_.prefix);
         c.next()) {
      if (plan_.filter.empty() || plan_.filter.matches(*c.object())) count(*c.object());
      if (n > enough) break;
    }
  }
  return n + (!protobuf_ && items > 0 ? items - 1 : 0);  // JSON's commas
}

CachedList::~CachedList() {
  evbuffer_free(staged_);
}

void CachedList::addBytes(std::string_view bytes) {
  if (gzip_) {
    gzip_->add(bytes);
  } else {
    appendBytes(staged_, bytes);
  }
}

void CachedList::add(const cache::ObjectPtr& obj) {
  if (protobuf_) {
    const std::string_view bytes = protobufObjectBytes(*obj, metadata_only_);
    addBytes(encoder::protobufItemPrefix(bytes.size()));
    addObject(obj, bytes);
    return;
  }
  if (!first_item_) addBytes(",");
  first_item_ = false;
  if (metadata_only_) {
    // {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{...}}
    addBytes(encoder::kPartialObjectMetadataPrefix);
    addObject(obj, metadataJson(*obj));
    addBytes("}");
    return;
  }
  addObject(obj, obj->bytes);
}

void CachedList::addObject(const cache::ObjectPtr& obj, std::string_view bytes) {
  if (gzip_) {
    gzip_->add(bytes);
  } else {
    addObjectBytes(staged_, obj, bytes);
  }
}

void CachedList::addLeaf(const cache::BTree::Node* leaf) {
  // The leaf's objects as ",o1,o2,..." (protobuf: each after its item
  // prefix): compressed by the first LIST that needs it, then kept with the
  // immutable leaf for every later one. A store holds one encoding, so a
  // leaf's fragment has one form.
  auto fragment = std::static_pointer_cast<const encoder::DeflateFragment>(leaf->derived.load());
  if (!fragment) {
    std::string joined;
    for (const auto& o : leaf->objects) {
      if (protobuf_) {
        joined += encoder::protobufItemPrefix(o->bytes.size());
      } else {
        joined += ',';
      }
      joined += o->bytes;
    }
    fragment = encoder::deflateFragment(joined);
    leaf->derived.store(fragment);  // a racing LIST may store an equal one: either will do
  }
  gzip_->add(fragment);
}

void CachedList::refill() {
  if (paged_) {
    while (evbuffer_get_length(staged_) < kChunk && page_next_ < page_.size())
      add(page_[page_next_++]);
  } else {
    while (evbuffer_get_length(staged_) < kChunk && cursor_.valid()) {
      const cache::ObjectPtr& obj = cursor_.object();
      if (!std::string_view(obj->key).starts_with(plan_.prefix)) {
        cursor_ = cache::BTree::Cursor();  // past this namespace
        break;
      }
      const cache::BTree::Node* leaf = cursor_.leaf();
      if (gzip_ && !metadata_only_ && plan_.filter.empty() && (protobuf_ || !first_item_) &&
          cursor_.indexInLeaf() == 0 &&
          std::string_view(leaf->objects.back()->key).starts_with(plan_.prefix)) {
        // A whole leaf inside the list: splice its fragment.
        addLeaf(leaf);
        for (size_t i = 0; i < leaf->objects.size(); ++i) cursor_.next();
        continue;
      }
      if (plan_.filter.empty() || plan_.filter.matches(*obj)) add(obj);
      cursor_.next();
    }
  }
  const bool all_added = paged_ ? page_next_ == page_.size() : !cursor_.valid();
  if (all_added && !done_) {
    addBytes(frame_.tail);
    if (gzip_) gzip_->finish();
    done_ = true;
    record_.setStatus(200);  // the whole body is on its way; before this, a hang-up counts as 499
  }
}

size_t CachedList::responseBodyReady(bool* eof) {
  *eof = false;
  if (failed_) return 0;
  if (evbuffer_get_length(staged_) == 0) {
    try {
      refill();
    } catch (const encoder::ZlibError& e) {
      // Part of the gzip stream is out: only a reset tells the client.
      reportInternalError(Metrics::InternalError::kZlib, "cached LIST gzip", e.what());
      failed_ = true;
      evbuffer_drain(staged_, evbuffer_get_length(staged_));
      stream_.resetStream();
      return 0;
    }
  }
  *eof = done_;
  return evbuffer_get_length(staged_);
}

void CachedList::pullResponseBody(evbuffer* out, size_t n) {
  moveBytes(staged_, out, n);
  record_.addBytesOut(n);
}

}  // namespace kcp::proxy
