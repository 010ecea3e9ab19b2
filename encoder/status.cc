#include "encoder/status.h"

#include "cache/protobuf.h"
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

std::string statusProtobuf(const Status& status) {
  namespace pb = cache::protobuf;
  // metav1.Status: every non-pointer field, even empty; details when set.
  std::string list_meta;
  pb::appendBytesField(list_meta, 1, "");
  pb::appendBytesField(list_meta, 2, "");
  pb::appendBytesField(list_meta, 3, "");
  std::string raw;
  pb::appendBytesField(raw, 1, list_meta);
  pb::appendBytesField(raw, 2, "Failure");
  pb::appendBytesField(raw, 3, status.message);
  pb::appendBytesField(raw, 4, status.reason);
  const StatusDetails& d = status.details;
  if (!d.name.empty() || !d.group.empty() || !d.kind.empty() || d.retry_after_seconds != 0) {
    std::string details;
    pb::appendBytesField(details, 1, d.name);
    pb::appendBytesField(details, 2, d.group);
    pb::appendBytesField(details, 3, d.kind);
    details += char(5 << 3);
    pb::appendVarint(details, uint64_t(int64_t(int32_t(d.retry_after_seconds))));
    pb::appendBytesField(details, 6, "");
    pb::appendBytesField(raw, 5, details);
  }
  raw += char(6 << 3);
  pb::appendVarint(raw, uint64_t(int64_t(int32_t(status.code))));
  return pb::envelopeHead("v1", "Status", raw.size()) + raw + std::string(pb::kEnvelopeTail);
}

}  // namespace kcp::encoder
