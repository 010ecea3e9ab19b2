// A cached Kubernetes object: immutable bytes plus the fields the cache needs
// to index, select and version it, parsed once when the object arrives.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/typed_metadata.h"

namespace kcp::cache {

// A field kube-apiserver lets clients select on (fieldSelector), beyond
// metadata.name and metadata.namespace: its label and where its value comes
// from in the object's JSON.
struct SelectableField {
  enum class Type { kString, kBool, kInteger };
  std::string label;                    // e.g. "spec.nodeName"
  std::vector<std::string> path;        // JSON members; a number indexes an array
  std::vector<std::string> fallback{};  // read when `path` gives "" (events' source)
  Type type = Type::kString;  // how Go formats the value ("true", "3"); absent: the zero value
  // The same value in the protobuf form: field numbers from the object
  // message down (a repeated field's first element), and the fallback's.
  std::vector<uint32_t> protobuf_path{};
  std::vector<uint32_t> protobuf_fallback{};
};
using SelectableFields = std::vector<SelectableField>;

// How a store holds its objects: kube-apiserver's JSON, or its protobuf
// (built-in types only) for clients that ask for it.
enum class Encoding { kJson, kProtobuf };
// "json" or "protobuf", for logs and metric labels.
inline const char* encodingName(Encoding e) {
  return e == Encoding::kProtobuf ? "protobuf" : "json";
}

// An object's labels, sorted by key, packed into one string (each label its
// key's and value's lengths, then their bytes): a cache holds millions, and
// two strings per label would cost more than many objects' JSON.
class Labels {
 public:
  using Pairs = std::vector<std::pair<std::string_view, std::string_view>>;
  Labels() = default;
  explicit Labels(Pairs pairs);  // in any order
  Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs)
      : Labels(Pairs(pairs)) {}

  // The value of label `key`, if the object has it.
  std::optional<std::string_view> find(std::string_view key) const;
  Pairs pairs() const;  // sorted by key
  bool empty() const { return packed_.empty(); }

 private:
  std::string packed_;
};

struct Object {
  Object() = default;
  // A copy's name and namespace_ view its own key.
  Object(const Object& other);
  ~Object();
  Object& operator=(const Object&) = delete;

  // Sets key, namespace_ and name together.
  void setName(std::string_view namespace_name, std::string_view object_name);

  // "namespace/name", or "name" when cluster-scoped: the store's sort key, in
  // the same byte order as kube-apiserver's etcd keys, so one namespace is one
  // contiguous key range.
  std::string key;
  // Views of key (one copy of each name per object): empty namespace_ for
  // cluster-scoped objects.
  std::string_view namespace_;
  std::string_view name;
  std::string uid;
  uint64_t resource_version = 0;
  Labels labels;
  std::vector<std::string> fields;  // the values of the resource's SelectableFields, in order
  // The object exactly as kube-apiserver encoded it, in the store's encoding
  // (JSON, or the protobuf message without its envelope).
  std::string bytes;
  // JSON: bytes[1, metadata_end) is `"metadata":{...}` (typed objects in
  // list-item form); 0 when not (custom resources). Protobuf: bytes[0,
  // metadata_end) is the ObjectMeta field.
  uint32_t metadata_end = 0;

  // A custom resource's (JSON) metadata-only forms, made on first use, then
  // kept with the object; null when its metadata is not as kube-apiserver
  // writes it. Thread-safe.
  const TypedMetadata* typedMetadata() const;

 private:
  // Made once: a racing second one is dropped. Failed: empty forms.
  mutable std::atomic<const TypedMetadata*> typed_metadata_{nullptr};
};

// The store's key of an object: "namespace/name", or "name" when cluster-scoped.
std::string objectKey(std::string_view namespace_, std::string_view name);

// Shared and immutable: a snapshot or a response in flight keeps it alive.
using ObjectPtr = std::shared_ptr<const Object>;

// Parses one object as kube-apiserver encodes it in JSON and takes ownership
// of the bytes; extracts the values of `fields`. Returns nullptr and sets
// `error` when the bytes are not a JSON object with metadata.name and a
// numeric metadata.resourceVersion.
ObjectPtr parseJsonObject(std::string json, std::string* error,
                          const SelectableFields& fields = {});

// kube-apiserver's resourceVersions are etcd revisions: decimal uint64 without
// sign or leading zeros. Returns false for anything else.
bool parseResourceVersion(std::string_view text, uint64_t& out);

}  // namespace kcp::cache
