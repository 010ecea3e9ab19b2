#include "proxy/object_bytes.h"

#include "encoder/json_list.h"

namespace kcp::proxy {
namespace {

void releaseObject(const void*, size_t, void* arg) { delete static_cast<cache::ObjectPtr*>(arg); }

}  // namespace

void addObjectBytes(evbuffer* out, const cache::ObjectPtr& object, std::string_view bytes) {
  evbuffer_add_reference(out, bytes.data(), bytes.size(), releaseObject, new cache::ObjectPtr(object));
}

void addSingleObject(evbuffer* out, const cache::ObjectPtr& object, ResponseForm form, std::string_view type_meta) {
  const std::string_view json = object->json;
  if (form == ResponseForm::kMetadataOnly && object->metadata_end > 0) {
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

}  // namespace kcp::proxy
