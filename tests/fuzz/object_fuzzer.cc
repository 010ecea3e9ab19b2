// Cached-object parsing (metadata out of kube-apiserver's JSON) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/object.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  auto obj =
      kcp::cache::parseJsonObject(std::string(reinterpret_cast<const char*>(data), size), &error);
  if (obj) {
    (void)obj->key;
  } else if (error.empty()) {
    __builtin_trap();  // a rejection always says why
  }
  return 0;
}
