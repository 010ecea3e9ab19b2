// Finds the parts of kube-apiserver's JSON that the cache needs without
// building a document: the byte spans of a LIST's items and its list
// metadata, and a watch event's type and object. Items stay bytes; nothing
// is re-encoded (DESIGN.md: "objects are bytes").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kcp::cache {

struct JsonListPage {
  std::string kind;  // e.g. "ConfigMapList"
  std::string api_version;
  std::string resource_version;
  std::string continue_token;
  std::optional<int64_t> remaining_item_count;
  std::vector<std::string_view> items;  // spans into the scanned bytes
};

// Scans a LIST response body. Returns nullopt and sets `error` if the bytes
// are not a JSON object with well-formed list fields.
std::optional<JsonListPage> scanJsonList(std::string_view body, std::string* error);

struct JsonWatchEvent {
  std::string type;         // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  std::string_view object;  // span into the scanned bytes
};

// Scans one watch event ({"type":...,"object":{...}}).
std::optional<JsonWatchEvent> scanJsonWatchEvent(std::string_view line, std::string* error);

// The object with metadata.resourceVersion set to `resource_version` (what
// kube-apiserver sends in a DELETED event for an object that left a watch's
// selection: its previous state at the event's resourceVersion). nullopt when
// the object has no such field.
std::optional<std::string> withResourceVersion(std::string_view object, uint64_t resource_version);

// The list-item form of an object as kube-apiserver writes a typed object in
// a GET or a watch event: `{"kind":"K","apiVersion":"V",` followed by the
// rest. Returns the object without that prefix (`{` + rest), or nullopt when
// it does not start with exactly that prefix (custom resources keep their
// kind and apiVersion in list items too, so they are stored as they come).
std::optional<std::string> stripTypeMeta(std::string_view object, std::string_view kind,
                                         std::string_view api_version);

// For an object in list-item form starting `{"metadata":{`, the offset just
// past the metadata value's closing brace; 0 otherwise. The metadata-only
// forms (PartialObjectMetadata) are spliced from this span.
size_t metadataEnd(std::string_view object);

// The prefix stripTypeMeta removes, for writing the object back in GET or
// watch form: `{"kind":"K","apiVersion":"V",`.
std::string typeMetaPrefix(std::string_view kind, std::string_view api_version);

}  // namespace kcp::cache
