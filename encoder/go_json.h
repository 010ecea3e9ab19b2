// JSON string encoding exactly as Go's encoding/json writes it (HTML-safe:
// <, >, & escaped; U+2028/U+2029 escaped; invalid UTF-8 replaced by U+FFFD),
// so the bytes we write match what kube-apiserver writes.
#pragma once

#include <string>
#include <string_view>

namespace kcp::encoder {

// Appends `s` as a quoted JSON string to `out`.
void appendGoJsonString(std::string& out, std::string_view s);

}  // namespace kcp::encoder
