#include "proxy/serving/get_plan.h"

#include <string>

#include "cache/object.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

std::optional<uint64_t> getMinResourceVersion(std::string_view query, bool* consistent) {
  std::string rv_text;
  bool other = false, seen = false;
  const bool decoded =
      forEachQueryParam(query, [&](const std::string& key, const std::string& value) {
        if (key == "resourceVersion" && !seen) {
          rv_text = value;
          seen = true;
        } else if (key != "timeout") {
          other = true;  // pretty, or a repeated or unknown parameter
        }
        return !other;
      });
  *consistent = false;
  if (!decoded || other) return std::nullopt;
  if (rv_text.empty()) {
    *consistent = true;
    return std::nullopt;
  }
  uint64_t rv;
  if (!cache::parseResourceVersion(rv_text, rv)) return std::nullopt;
  return rv;
}

}  // namespace kcp::proxy
