// The protobuf readers (what upstream sends the reflector: envelopes, lists,
// watch events, objects with the selectable fields of pods and events) and
// the bookmark rewriters, on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/protobuf.h"
#include "cache/selectable_fields.h"

namespace pb = kcp::cache::protobuf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (const auto u = pb::unwrap(input)) {
    if (pb::scanList(u->raw, &error)) (void)0;
    if (const auto e = pb::scanWatchEvent(u->raw, &error)) (void)pb::unwrap(e->object);
  }
  if (const auto e = pb::scanWatchEvent(input, &error)) (void)pb::statusCode(e->object);
  if (const auto page = pb::scanList(input, &error)) {
    for (const auto item : page->items) (void)pb::parseObject(std::string(item), &error);
  }
  error.clear();
  static const auto pod_fields = kcp::cache::selectableFields("", "pods", true).fields;
  static const auto event_fields = kcp::cache::selectableFields("", "events", true).fields;
  const auto obj = pb::parseObject(input, &error, size % 2 ? pod_fields : event_fields);
  if (!obj && error.empty()) __builtin_trap();  // a rejection always says why
  if (obj && obj->fields.size() != (size % 2 ? pod_fields : event_fields).size()) __builtin_trap();
  (void)pb::withoutAnnotations(input);
  if (obj) {
    // An object read back after a rewrite is the same object at the new resourceVersion.
    const auto moved =
        pb::withResourceVersion(obj->bytes, obj->resource_version + 1,
                                std::pair<std::string_view, std::string_view>("k", "v"));
    if (!moved) __builtin_trap();
    const auto again = pb::parseObject(*moved, &error);
    if (!again || again->key != obj->key || again->resource_version != obj->resource_version + 1)
      __builtin_trap();
  }
  (void)pb::resourceVersion(input);
  (void)pb::metadataField(input);
  return 0;
}
