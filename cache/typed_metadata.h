// A custom resource's metadata as kube-apiserver writes it in the
// metadata-only forms (PartialObjectMetadata): custom resources are stored
// and listed as unstructured JSON, keys sorted, but PartialObjectMetadata is
// a typed object, so its ObjectMeta comes out in the Go struct's field order
// in JSON and as gogo-protobuf writes it in protobuf (which kube-apiserver
// answers metadata clients with, even for custom resources). Both are made
// once per object, on the first metadata-only request (Object::typedMetadata).
//
// kube-apiserver stores custom resources' metadata normalized (known fields
// only, no empty maps or lists, RFC 3339 times), so reordering the stored
// JSON gives its bytes; fields it would drop are dropped here too.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kcp::cache {

struct TypedMetadata {
  std::string json;      // `"metadata":{...}`, ObjectMeta's keys in struct order
  std::string protobuf;  // field 1 (ObjectMeta) of a PartialObjectMetadata message
};

// From a custom resource's JSON object; nullopt (and `error`) when its
// metadata is not what kube-apiserver writes.
std::optional<TypedMetadata> typedMetadata(std::string_view object_json, std::string* error);

// Field 1 of a PartialObjectMetadata message whose ObjectMeta is empty but
// for the zero values gogo-protobuf writes: what kube-apiserver's protobuf
// bookmarks of metadata-only watches of custom resources are made of.
std::string emptyObjectMetaField();

}  // namespace kcp::cache
