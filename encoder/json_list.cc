#include "encoder/json_list.h"

#include "encoder/go_json.h"

namespace kcp::encoder {

ListFrame jsonListFrame(std::string_view list_kind, std::string_view api_version,
                        const ListMeta& meta, bool sorted_keys) {
  ListFrame f;
  const std::string rv = std::to_string(meta.resource_version);
  std::string cont;  // ,"continue":"C" (typed lists omit it when empty)
  if (!meta.continue_token.empty() || sorted_keys) {
    cont = ",\"continue\":";
    appendGoJsonString(cont, meta.continue_token);
  }
  const std::string remaining =
      meta.remaining_item_count
          ? ",\"remainingItemCount\":" + std::to_string(*meta.remaining_item_count)
          : "";
  if (sorted_keys) {
    f.head = "{\"apiVersion\":";
    appendGoJsonString(f.head, api_version);
    f.head += ",\"items\":[";
    f.tail = "],\"kind\":";
    appendGoJsonString(f.tail, list_kind);
    f.tail +=
        ",\"metadata\":{" + cont.substr(1) + remaining + ",\"resourceVersion\":\"" + rv + "\"}}\n";
  } else {
    f.head = "{\"kind\":";
    appendGoJsonString(f.head, list_kind);
    f.head += ",\"apiVersion\":";
    appendGoJsonString(f.head, api_version);
    f.head +=
        ",\"metadata\":{\"resourceVersion\":\"" + rv + "\"" + cont + remaining + "},\"items\":[";
    f.tail = "]}\n";
  }
  return f;
}

}  // namespace kcp::encoder
