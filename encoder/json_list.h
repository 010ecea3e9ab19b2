// The framing of a JSON LIST response around its items, byte for byte as
// kube-apiserver writes it, so that a LIST is a splice: head, the stored
// item bytes joined by ',', tail.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kcp::encoder {

struct ListFrame {
  std::string head;  // up to and including "items":[
  std::string tail;  // from ] to the end, newline included
};

// The list metadata (metav1.ListMeta) of one response.
struct ListMeta {
  uint64_t resource_version = 0;
  std::string continue_token{};                   // "" on the last page
  std::optional<int64_t> remaining_item_count{};  // only for pages of unfiltered lists
};

// Metadata-only forms (as=PartialObjectMetadata[List]): each item is this
// prefix, the object's `"metadata":{...}` span, and "}".
inline constexpr std::string_view kPartialObjectMetadataPrefix =
    R"({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",)";

// Typed resources:
// {"kind":"XList","apiVersion":"V","metadata":{"resourceVersion":"R"[,"continue":"C","remainingItemCount":N]},"items":[...]}.
// Custom resources (sorted keys):
// {"apiVersion":"G/V","items":[...],"kind":"XList","metadata":{"continue":"C"[,"remainingItemCount":N],"resourceVersion":"R"}}.
ListFrame jsonListFrame(std::string_view list_kind, std::string_view api_version,
                        const ListMeta& meta, bool sorted_keys);

}  // namespace kcp::encoder
