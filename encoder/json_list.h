// The framing of a JSON LIST response around its items, byte for byte as
// kube-apiserver writes it, so that a LIST is a splice: head, the stored
// item bytes joined by ',', tail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kcp::encoder {

struct JsonListFrame {
  std::string head;  // up to and including "items":[
  std::string tail;  // from ] to the end, newline included
};

// Typed resources: {"kind":"XList","apiVersion":"V","metadata":{"resourceVersion":"R"},"items":[...]}.
// Custom resources (sorted keys): {"apiVersion":"G/V","items":[...],"kind":"XList","metadata":{"continue":"","resourceVersion":"R"}}.
JsonListFrame jsonListFrame(std::string_view list_kind, std::string_view api_version, uint64_t resource_version,
                            bool sorted_keys);

}  // namespace kcp::encoder
