// LIST-body and watch-event scanning on arbitrary bytes: spans must lie
// inside the input, and every span must itself be a whole JSON object.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/json_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto inside = [&](std::string_view span) {
    if (span.data() < in.data() || span.data() + span.size() > in.data() + in.size())
      __builtin_trap();
    if (span.empty() || span.front() != '{' || span.back() != '}') __builtin_trap();
  };
  if (auto page = kcp::cache::scanJsonList(in, &error)) {
    for (const auto item : page->items) inside(item);
  }
  if (auto event = kcp::cache::scanJsonWatchEvent(in, &error)) inside(event->object);
  return 0;
}
