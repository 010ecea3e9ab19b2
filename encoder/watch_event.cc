#include "encoder/watch_event.h"

#include "encoder/go_json.h"

namespace kcp::encoder {

std::string jsonWatchEventHead(std::string_view type) {
  std::string out = "{\"type\":";
  appendGoJsonString(out, type);
  out += ",\"object\":";
  return out;
}

std::string jsonBookmarkEvent(std::string_view kind, std::string_view api_version,
                              uint64_t resource_version, bool sorted_keys,
                              bool initial_events_end) {
  const std::string rv = "\"resourceVersion\":\"" + std::to_string(resource_version) + "\"";
  const std::string annotations = R"("annotations":{"k8s.io/initial-events-end":"true"})";
  std::string out = jsonWatchEventHead("BOOKMARK");
  if (sorted_keys) {
    out += "{\"apiVersion\":";
    appendGoJsonString(out, api_version);
    out += ",\"kind\":";
    appendGoJsonString(out, kind);
    out += ",\"metadata\":{" + (initial_events_end ? annotations + "," : "") + rv + "}}";
  } else {
    out += "{\"kind\":";
    appendGoJsonString(out, kind);
    out += ",\"apiVersion\":";
    appendGoJsonString(out, api_version);
    out += ",\"metadata\":{" + rv + (initial_events_end ? "," + annotations : "") + "}}";
  }
  out += kJsonWatchEventTail;
  return out;
}

std::string jsonErrorEvent(const Status& status) {
  std::string object = statusJson(status);
  object.pop_back();  // statusJson ends a response body with a newline
  return jsonWatchEventHead("ERROR") + object + std::string(kJsonWatchEventTail);
}

}  // namespace kcp::encoder
