// A custom resource's metadata made typed (JSON reordered, protobuf written)
// from arbitrary bytes: refused with a reason or made, and what is made is
// a well-formed PartialObjectMetadata message and a JSON member.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/protobuf.h"
#include "cache/typed_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto m = kcp::cache::typedMetadata(input, &error);
  if (!m) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  if (!m->json.starts_with("\"metadata\":{") || !m->json.ends_with("}")) __builtin_trap();
  kcp::cache::protobuf::Reader r(m->protobuf);
  kcp::cache::protobuf::Field f;
  if (!r.next(f) || f.number != 1 || f.wire_type != 2 || r.next(f) || r.failed()) __builtin_trap();
  kcp::cache::protobuf::Reader meta(f.bytes);
  while (meta.next(f)) {
  }
  if (meta.failed()) __builtin_trap();
  return 0;
}
