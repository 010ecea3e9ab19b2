// The kubeconfig loader on arbitrary bytes: a clear ConfigError or a
// config, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/kubeconfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kcp::config::parseKubeconfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                 "/nonexistent");
  } catch (const kcp::config::ConfigError&) {
  }
  return 0;
}
