// Warm-restart state files (cache/state_file) on arbitrary bytes: refused
// with a reason, or parsed into objects that lie inside the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto state = kcp::cache::parseState(input, &error);
  if (!state) {
    if (error.empty()) __builtin_trap();  // a rejection always says why
    return 0;
  }
  size_t total = 0;
  for (const auto& o : state->objects) total += o.size();
  if (total > size) __builtin_trap();
  return 0;
}
