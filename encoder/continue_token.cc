#include "encoder/continue_token.h"

#include <rapidjson/document.h>

#include "config/base64.h"
#include "encoder/go_json.h"

namespace kcp::encoder {

std::string encodeContinueToken(const ContinueToken& token) {
  std::string json =
      "{\"v\":\"meta.k8s.io/v1\",\"rv\":" + std::to_string(token.resource_version) + ",\"start\":";
  appendGoJsonString(json, token.start);
  json += '}';
  return config::base64Encode(json, config::Base64Alphabet::kUrl);
}

std::optional<ContinueToken> decodeContinueToken(std::string_view text) {
  // Go's RawURLEncoding: no padding, no whitespace.
  if (text.empty() || text.find_first_of("= \t\r\n") != std::string_view::npos) return std::nullopt;
  const auto json = config::base64Decode(text, config::Base64Alphabet::kUrl);
  if (!json) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json->data(), json->size());
  // Exactly the three fields with their exact names: Go would also match
  // other spellings case-insensitively, which is left to kube-apiserver.
  if (doc.HasParseError() || !doc.IsObject() || doc.MemberCount() != 3) return std::nullopt;
  const auto v = doc.FindMember("v"), rv = doc.FindMember("rv"), start = doc.FindMember("start");
  if (v == doc.MemberEnd() || rv == doc.MemberEnd() || start == doc.MemberEnd())
    return std::nullopt;
  if (!v->value.IsString() ||
      std::string_view(v->value.GetString(), v->value.GetStringLength()) != "meta.k8s.io/v1") {
    return std::nullopt;
  }
  if (!rv->value.IsInt64() || rv->value.GetInt64() <= 0 || !start->value.IsString())
    return std::nullopt;
  ContinueToken token{uint64_t(rv->value.GetInt64()),
                      std::string(start->value.GetString(), start->value.GetStringLength())};
  // Tokens from kube-apiserver's watch cache start with '/', from etcd not.
  if (token.start.starts_with('/')) token.start.erase(0, 1);
  // kube-apiserver refuses keys that path.Clean would change (no "..", "//",
  // "." segments or trailing "/"); only plain keys are accepted here.
  if (token.start.empty() || token.start.front() == '/' || token.start.back() == '/' ||
      token.start.find("//") != std::string::npos) {
    return std::nullopt;
  }
  for (size_t pos = 0; pos <= token.start.size();) {
    const size_t slash = std::min(token.start.find('/', pos), token.start.size());
    const std::string_view seg(token.start.data() + pos, slash - pos);
    if (seg == "." || seg == "..") return std::nullopt;
    pos = slash + 1;
  }
  return token;
}

}  // namespace kcp::encoder
