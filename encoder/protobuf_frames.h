// kube-apiserver's protobuf framing around stored object messages, so that a
// protobuf LIST, GET or watch event is a splice too: computed heads, the
// objects' bytes as they are, fixed tails. Every length is known up front
// (protobuf prefixes each message with its size), so a LIST's head needs the
// total size of its items first.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cache/protobuf.h"
#include "encoder/json_list.h"

namespace kcp::encoder {

// A list item's bytes before the object message: field 2's tag and length.
std::string protobufItemPrefix(size_t object_size);
// An item's size in the list, prefix included.
size_t protobufItemSize(size_t object_size);

// The envelope and ListMeta before the items (whose sizes, prefixes
// included, add up to `items_size`), and the envelope's tail after them.
ListFrame protobufListFrame(std::string_view list_kind, std::string_view api_version,
                            const ListMeta& meta, size_t items_size);

// A watch event up to its object message: the frame's 4-byte big-endian
// length, then metav1.WatchEvent {1: type, 2: RawExtension {1: the object
// enveloped}}. cache::protobuf::kEnvelopeTail follows the object.
std::string protobufWatchEventHead(std::string_view type, std::string_view api_version,
                                   std::string_view kind, size_t object_size);

}  // namespace kcp::encoder
