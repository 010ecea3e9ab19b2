#include "proxy/request/response_form.h"

#include <string>

#include "cache/protobuf.h"

namespace kcp::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// What one Accept entry asks for, if the cache can write it.
std::optional<ResponseForm> formOf(std::string_view entry, std::string_view verb, bool protobuf) {
  const size_t semi = entry.find(';');
  const std::string_view type = trim(entry.substr(0, semi));
  std::string_view as, group, version;
  for (std::string_view params = semi == std::string_view::npos ? "" : entry.substr(semi + 1);
       !params.empty();) {
    const size_t next = params.find(';');
    const std::string_view param = trim(params.substr(0, next));
    params = next == std::string_view::npos ? "" : params.substr(next + 1);
    const size_t eq = param.find('=');
    const std::string_view key = param.substr(0, eq),
                           value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
    if (key == "as") {
      as = value;
    } else if (key == "g") {
      group = value;
    } else if (key == "v") {
      version = value;
    } else if (key != "q") {
      return std::nullopt;  // a parameter that changes the answer in a way not written here
    }
  }
  std::optional<cache::Encoding> encoding;
  if (type == "application/json") encoding = cache::Encoding::kJson;
  // Metadata only is a typed object, which kube-apiserver writes in protobuf for any resource.
  if (type == cache::protobuf::kContentType && (protobuf || !as.empty()))
    encoding = cache::Encoding::kProtobuf;
  if (as.empty()) {
    if (type == "*/*" || type == "application/*") encoding = cache::Encoding::kJson;
    if (!encoding) return std::nullopt;
    return ResponseForm{*encoding, false};
  }
  // Metadata only, in the list or object form the verb answers with.
  const std::string_view wanted =
      verb == "list" ? "PartialObjectMetadataList" : "PartialObjectMetadata";
  if (encoding && as == wanted && group == "meta.k8s.io" && version == "v1")
    return ResponseForm{*encoding, true};
  return std::nullopt;
}

}  // namespace

std::optional<ResponseForm> cacheResponseForm(const RequestHead& head, std::string_view verb,
                                              bool protobuf) {
  if (const std::string* ua = head.header("user-agent");
      ua != nullptr &&
      (ua->starts_with("curl") || ua->starts_with("Wget") || ua->starts_with("Mozilla/5.0"))) {
    return std::nullopt;
  }
  const std::string* accept = head.header("accept");
  if (accept == nullptr || trim(*accept).empty()) return ResponseForm{};
  for (std::string_view rest = *accept; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    if (auto form = formOf(entry, verb, protobuf)) return form;
  }
  return std::nullopt;
}

}  // namespace kcp::proxy
