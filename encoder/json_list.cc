#include "encoder/json_list.h"

#include "encoder/go_json.h"

namespace kcp::encoder {

JsonListFrame jsonListFrame(std::string_view list_kind, std::string_view api_version, uint64_t resource_version,
                            bool sorted_keys) {
  JsonListFrame f;
  const std::string rv = std::to_string(resource_version);
  if (sorted_keys) {
    f.head = "{\"apiVersion\":";
    appendGoJsonString(f.head, api_version);
    f.head += ",\"items\":[";
    f.tail = "],\"kind\":";
    appendGoJsonString(f.tail, list_kind);
    f.tail += ",\"metadata\":{\"continue\":\"\",\"resourceVersion\":\"" + rv + "\"}}\n";
  } else {
    f.head = "{\"kind\":";
    appendGoJsonString(f.head, list_kind);
    f.head += ",\"apiVersion\":";
    appendGoJsonString(f.head, api_version);
    f.head += ",\"metadata\":{\"resourceVersion\":\"" + rv + "\"},\"items\":[";
    f.tail = "]}\n";
  }
  return f;
}

}  // namespace kcp::encoder
