#include "encoder/protobuf_frames.h"

namespace kcp::encoder {

namespace pb = cache::protobuf;

std::string protobufItemPrefix(size_t object_size) {
  std::string out;
  pb::appendLengthPrefix(out, 2, object_size);
  return out;
}

size_t protobufItemSize(size_t object_size) {
  return 1 + pb::varintSize(object_size) + object_size;
}

ListFrame protobufListFrame(std::string_view list_kind, std::string_view api_version,
                            const ListMeta& meta, size_t items_size) {
  // metav1.ListMeta as gogo-protobuf writes it: selfLink, resourceVersion and
  // continue always (even empty), remainingItemCount when set.
  std::string list_meta;
  pb::appendBytesField(list_meta, 1, "");
  pb::appendBytesField(list_meta, 2, std::to_string(meta.resource_version));
  pb::appendBytesField(list_meta, 3, meta.continue_token);
  if (meta.remaining_item_count) {
    list_meta += char(4 << 3);  // field 4, varint
    pb::appendVarint(list_meta, uint64_t(*meta.remaining_item_count));
  }
  std::string raw_head;
  pb::appendBytesField(raw_head, 1, list_meta);
  ListFrame f;
  f.head = pb::envelopeHead(api_version, list_kind, raw_head.size() + items_size) + raw_head;
  f.tail = pb::kEnvelopeTail;
  return f;
}

std::string protobufWatchEventHead(std::string_view type, std::string_view api_version,
                                   std::string_view kind, size_t object_size) {
  const std::string envelope_head = pb::envelopeHead(api_version, kind, object_size);
  const size_t envelope_size = envelope_head.size() + object_size + pb::kEnvelopeTail.size();
  const size_t extension_size = 1 + pb::varintSize(envelope_size) + envelope_size;
  std::string event;
  pb::appendBytesField(event, 1, type);
  pb::appendLengthPrefix(event, 2, extension_size);
  pb::appendLengthPrefix(event, 1, envelope_size);
  event += envelope_head;
  const size_t frame_size = event.size() + object_size + pb::kEnvelopeTail.size();
  std::string out;
  out.reserve(4 + event.size());
  for (int shift = 24; shift >= 0; shift -= 8) out += char(uint8_t(frame_size >> shift));
  return out + event;
}

}  // namespace kcp::encoder
