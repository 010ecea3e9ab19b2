// Request info and query parsing on arbitrary method + target.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/request/request_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t space = in.find(' ');
  const std::string_view method = in.substr(0, space == std::string_view::npos ? 0 : space);
  const std::string_view target = space == std::string_view::npos ? in : in.substr(space + 1);
  const auto info = kcp::proxy::parseRequestInfo(method, target);
  std::string value;
  const size_t q = target.find('?');
  if (q != std::string_view::npos) {
    kcp::proxy::queryParam(target.substr(q + 1), "labelSelector", value);
    kcp::proxy::queryParam(target.substr(q + 1), "watch", value);
  }
  (void)info;
  return 0;
}
