#include "proxy/handlers/object_bytes.h"

#include <new>
#include <stdexcept>

#include "cache/protobuf.h"
#include "encoder/json_list.h"

namespace kcp::proxy {
namespace {

// libevent's cleanup for written object bytes: dropping a reference cannot throw.
void releaseObject(const void*, size_t, void* arg) noexcept {
  delete static_cast<cache::ObjectPtr*>(arg);
}

}  // namespace

void appendBytes(evbuffer* out, std::string_view bytes) {
  if (evbuffer_add(out, bytes.data(), bytes.size()) != 0) throw std::bad_alloc();
}

void moveBytes(evbuffer* from, evbuffer* to, size_t n) {
  // Splitting a chain copies, and that can fail.
  if (evbuffer_remove_buffer(from, to, n) != int(n)) throw std::bad_alloc();
}

void addObjectBytes(evbuffer* out, const cache::ObjectPtr& object, std::string_view bytes) {
  auto* hold = new cache::ObjectPtr(object);
  if (evbuffer_add_reference(out, bytes.data(), bytes.size(), releaseObject, hold) != 0) {
    delete hold;  // libevent calls the cleanup only for a reference it took
    throw std::bad_alloc();
  }
}

namespace {

const cache::TypedMetadata& typedMetadataOf(const cache::Object& object) {
  const cache::TypedMetadata* m = object.typedMetadata();
  // Never a metadata-only answer with the metadata missing: the stream ends.
  if (m == nullptr)
    throw std::runtime_error("custom resource " + object.key +
                             ": metadata not as kube-apiserver writes it");
  return *m;
}

}  // namespace

std::string_view metadataJson(const cache::Object& object) {
  if (object.metadata_end > 0)
    return std::string_view(object.bytes).substr(1, object.metadata_end - 1);
  return typedMetadataOf(object).json;
}

void addSingleObject(evbuffer* out, const cache::ObjectPtr& object, ResponseForm form,
                     std::string_view type_meta) {
  const std::string_view json = object->bytes;
  if (form.metadata_only) {
    appendBytes(out, encoder::kPartialObjectMetadataPrefix);
    addObjectBytes(out, object, metadataJson(*object));
    appendBytes(out, "}");
  } else if (!type_meta.empty()) {
    appendBytes(out, type_meta);
    addObjectBytes(out, object, json.substr(1));
  } else {
    addObjectBytes(out, object, json);
  }
}

std::string_view protobufObjectBytes(const cache::Object& object, bool metadata_only) {
  const std::string_view bytes = object.bytes;
  if (!metadata_only) return bytes;
  // A JSON object (custom resources have no protobuf form): its metadata made protobuf once.
  if (!bytes.empty() && bytes.front() == '{') return typedMetadataOf(object).protobuf;
  return bytes.substr(0, object.metadata_end);
}

void addProtobufObject(evbuffer* out, const cache::ObjectPtr& object, bool metadata_only,
                       std::string_view api_version, std::string_view kind) {
  const std::string_view bytes = protobufObjectBytes(*object, metadata_only);
  const std::string head =
      metadata_only
          ? cache::protobuf::envelopeHead("meta.k8s.io/v1", "PartialObjectMetadata", bytes.size())
          : cache::protobuf::envelopeHead(api_version, kind, bytes.size());
  appendBytes(out, head);
  addObjectBytes(out, object, bytes);
  appendBytes(out, cache::protobuf::kEnvelopeTail);
}

}  // namespace kcp::proxy
