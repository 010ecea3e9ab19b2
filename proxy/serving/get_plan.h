// Whether the cache answers a GET of one object: the resourceVersion it
// asks for, read as kube-apiserver's GetOptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kcp::proxy {

// "0" (any state) or N (at least N); nullopt for anything else (no
// resourceVersion is a consistent read: `consistent` is then set; other
// parameters change the answer).
std::optional<uint64_t> getMinResourceVersion(std::string_view query, bool* consistent);

}  // namespace kcp::proxy
