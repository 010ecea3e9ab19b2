#include "proxy/object_bytes.h"

#include "cache/protobuf.h"
#include "encoder/json_list.h"

namespace kcp::proxy {
namespace {

void releaseObject(const void*, size_t, void* arg) { delete static_cast<cache::ObjectPtr*>(arg); }

}  // namespace

void addObjectBytes(evbuffer* out, const cache::ObjectPtr& object, std::string_view bytes) {
  evbuffer_add_reference(out, bytes.data(), bytes.size(), releaseObject, new cache::ObjectPtr(object));
}

void addSingleObject(evbuffer* out, const cache::ObjectPtr& object, ResponseForm form, std::string_view type_meta) {
  const std::string_view json = object->bytes;
  if (form.metadata_only && object->metadata_end > 0) {
    evbuffer_add(out, encoder::kPartialObjectMetadataPrefix.data(), encoder::kPartialObjectMetadataPrefix.size());
    addObjectBytes(out, object, json.substr(1, object->metadata_end - 1));
    evbuffer_add(out, "}", 1);
  } else if (!type_meta.empty()) {
    evbuffer_add(out, type_meta.data(), type_meta.size());
    addObjectBytes(out, object, json.substr(1));
  } else {
    addObjectBytes(out, object, json);
  }
}

std::string_view protobufObjectBytes(const cache::Object& object, bool metadata_only) {
  const std::string_view bytes = object.bytes;
  return metadata_only ? bytes.substr(0, object.metadata_end) : bytes;
}

void addProtobufObject(evbuffer* out, const cache::ObjectPtr& object, bool metadata_only, std::string_view api_version,
                       std::string_view kind) {
  const std::string_view bytes = protobufObjectBytes(*object, metadata_only);
  const std::string head = metadata_only ? cache::protobuf::envelopeHead("meta.k8s.io/v1", "PartialObjectMetadata", bytes.size())
                                         : cache::protobuf::envelopeHead(api_version, kind, bytes.size());
  evbuffer_add(out, head.data(), head.size());
  addObjectBytes(out, object, bytes);
  evbuffer_add(out, cache::protobuf::kEnvelopeTail.data(), cache::protobuf::kEnvelopeTail.size());
}

}  // namespace kcp::proxy
