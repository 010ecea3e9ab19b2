// Base64 (RFC 4648) for the places Kubernetes uses it: kubeconfig *-data
// fields (standard alphabet) and continue tokens (URL-safe alphabet).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kcp::config {

enum class Base64Alphabet { kStandard, kUrl };

// Encodes with '=' padding for kStandard and without padding for kUrl, as Go's
// base64.StdEncoding and base64.RawURLEncoding do.
std::string base64Encode(std::string_view data,
                         Base64Alphabet alphabet = Base64Alphabet::kStandard);

// Decodes; padding is optional, whitespace (line breaks in kubeconfigs) is
// skipped. Returns nullopt on any other invalid character or a bad length.
std::optional<std::string> base64Decode(std::string_view text,
                                        Base64Alphabet alphabet = Base64Alphabet::kStandard);

}  // namespace kcp::config
