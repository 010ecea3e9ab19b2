#include "encoder/continue_token.h"

#include <catch2/catch.hpp>

#include "config/base64.h"

using kcp::encoder::ContinueToken;
using kcp::encoder::decodeContinueToken;
using kcp::encoder::encodeContinueToken;

namespace {
std::string token(const std::string& json) {
  return kcp::config::base64Encode(json, kcp::config::Base64Alphabet::kUrl);
}
}  // namespace

TEST_CASE("continue tokens are kube-apiserver's: base64url JSON with v, rv, start", "[encoder]") {
  // As kube-apiserver 1.37 encodes the token after "ns/cm-1" at revision 42.
  const std::string encoded = encodeContinueToken({42, std::string("ns/cm-1\0", 8)});
  CHECK(kcp::config::base64Decode(encoded, kcp::config::Base64Alphabet::kUrl) ==
        R"({"v":"meta.k8s.io/v1","rv":42,"start":"ns/cm-1\u0000"})");
  CHECK(encoded.find('=') == std::string::npos);
  const auto decoded = decodeContinueToken(encoded);
  REQUIRE(decoded);
  CHECK(decoded->resource_version == 42);
  CHECK(decoded->start == std::string("ns/cm-1\0", 8));
}

TEST_CASE("continue tokens kube-apiserver would refuse are not decoded", "[encoder]") {
  CHECK_FALSE(decodeContinueToken(""));
  CHECK_FALSE(decodeContinueToken("!!!"));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v2","rv":1,"start":"a"})")));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":0,"start":"a"})")));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":1,"start":""})")));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":1,"start":"../x"})")));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":1,"start":"a//b"})")));
  CHECK_FALSE(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":"1","start":"a"})")));
  CHECK(decodeContinueToken(token(R"({"v":"meta.k8s.io/v1","rv":7,"start":"ns/a"})")));
}
