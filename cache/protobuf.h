// kube-apiserver's protobuf encoding (application/vnd.kubernetes.protobuf),
// read and written at the wire level: no generated code and no schema, only
// the few fields the cache needs (ObjectMeta, ListMeta, WatchEvent, Status).
// kube-apiserver marshals with gogo-protobuf: fields in ascending number
// order, map entries sorted by key, non-pointer fields always present. An
// object's bytes are therefore spliced as they are, and the few rewritten
// (a bookmark's resourceVersion) are rebuilt in that same order.
//
// A body or a watch event's object is an envelope: the 4 bytes "k8s\0" then
// a runtime.Unknown {1: TypeMeta {1: apiVersion, 2: kind}, 2: raw, 3:
// contentEncoding, 4: contentType}, where raw is the object's own message.
// Lists are {1: ListMeta, 2: item, 2: item, ...}; ObjectMeta is field 1 of
// every object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/object.h"

namespace kcp::cache::protobuf {

inline constexpr std::string_view kMagic{"k8s\0", 4};
inline constexpr std::string_view kContentType = "application/vnd.kubernetes.protobuf";
inline constexpr std::string_view kWatchContentType =
    "application/vnd.kubernetes.protobuf;stream=watch";

// One field of a message as it appears on the wire.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;  // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t varint = 0;     // wire type 0
  std::string_view bytes;  // wire type 2: the payload
  std::string_view whole;  // the field as encoded, tag included
};

// Iterates over a message's fields; false at the end or on malformed input
// (then `failed()`).
class Reader {
 public:
  explicit Reader(std::string_view message) : data_(message) {}
  bool next(Field& field);
  bool failed() const { return failed_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

size_t varintSize(uint64_t v);
void appendVarint(std::string& out, uint64_t v);
// A length-delimited field's tag and length; its `length` bytes follow.
void appendLengthPrefix(std::string& out, uint32_t number, size_t length);
void appendBytesField(std::string& out, uint32_t number, std::string_view bytes);

struct Unknown {
  std::string_view api_version, kind, raw;
};
// The envelope around an object; nullopt when `body` is not one.
std::optional<Unknown> unwrap(std::string_view body);
// The envelope's bytes before an object of `raw_length` bytes; kEnvelopeTail follows it.
std::string envelopeHead(std::string_view api_version, std::string_view kind, size_t raw_length);
// contentEncoding and contentType, both empty.
inline constexpr std::string_view kEnvelopeTail{"\x1a\x00\x22\x00", 4};

struct ListPage {
  std::string_view resource_version, continue_token;
  std::vector<std::string_view> items;
};
// A list message (the envelope's raw): its ListMeta and item messages.
std::optional<ListPage> scanList(std::string_view raw, std::string* error);

struct WatchEvent {
  std::string_view type;    // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  std::string_view object;  // an envelope
};
// One metav1.WatchEvent message (a frame of a protobuf watch stream).
std::optional<WatchEvent> scanWatchEvent(std::string_view message, std::string* error);

// The code of a metav1.Status message (0 when absent).
int32_t statusCode(std::string_view status);

// An object message's metadata.resourceVersion (a bookmark has nothing else).
std::optional<uint64_t> resourceVersion(std::string_view object);

// An object message's ObjectMeta field (field 1, tag included), which alone
// is a PartialObjectMetadata message; "" when the object does not start with it.
std::string_view metadataField(std::string_view object);

// Parses an object message (not enveloped) and takes ownership of the bytes:
// name, namespace, uid, resourceVersion and labels from its ObjectMeta, and
// the values of `fields` (by their protobuf paths).
ObjectPtr parseObject(std::string bytes, std::string* error, const SelectableFields& fields = {});

// The object message with metadata.resourceVersion set to `rv` and, if
// `annotation` is given, that annotation added: how a bookmark is made from
// an empty object of the kind (kube-apiserver sends one as its bookmark; the
// cache keeps it as the template), or a DELETED event's object moved to the
// event's resourceVersion. nullopt when the bytes are not an object.
std::optional<std::string> withResourceVersion(
    std::string_view object, uint64_t rv,
    std::optional<std::pair<std::string_view, std::string_view>> annotation = std::nullopt);

// The object message without metadata.annotations: a bookmark's object
// as a template for the cache's own. nullopt when the bytes are not an object.
std::optional<std::string> withoutAnnotations(std::string_view object);

}  // namespace kcp::cache::protobuf
