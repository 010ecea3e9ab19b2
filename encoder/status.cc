#include "encoder/status.h"

#include "encoder/go_json.h"

namespace kcp::encoder {

std::string statusJson(const Status& status) {
  std::string out = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure")";
  const auto field = [&out](std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":";
    appendGoJsonString(out, value);
  };
  if (!status.message.empty()) field("message", status.message);
  if (!status.reason.empty()) field("reason", status.reason);
  const StatusDetails& d = status.details;
  if (!d.name.empty() || !d.group.empty() || !d.kind.empty() || d.retry_after_seconds != 0) {
    out += R"(,"details":{)";
    const size_t open = out.size();
    const auto detail = [&](std::string_view key, std::string_view value) {
      if (value.empty()) return;
      if (out.size() != open) out += ',';
      out += '"';
      out += key;
      out += "\":";
      appendGoJsonString(out, value);
    };
    detail("name", d.name);
    detail("group", d.group);
    detail("kind", d.kind);
    if (d.retry_after_seconds != 0) {
      if (out.size() != open) out += ',';
      out += R"("retryAfterSeconds":)" + std::to_string(d.retry_after_seconds);
    }
    out += '}';
  }
  out += R"(,"code":)" + std::to_string(status.code) + "}\n";
  return out;
}

}  // namespace kcp::encoder
