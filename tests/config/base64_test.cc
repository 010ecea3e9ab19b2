#include "config/base64.h"

#include <catch2/catch.hpp>
#include <random>

using kcp::config::Base64Alphabet;
using kcp::config::base64Decode;
using kcp::config::base64Encode;

TEST_CASE("base64 matches RFC 4648 test vectors", "[config]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64Encode(plain) == encoded);
    CHECK(base64Decode(encoded) == std::string(plain));
  }
}

TEST_CASE("base64url has no padding and its own alphabet, as Go's RawURLEncoding", "[config]") {
  CHECK(base64Encode("\xfb\xff", Base64Alphabet::kUrl) == "-_8");
  CHECK(base64Decode("-_8", Base64Alphabet::kUrl) == std::string("\xfb\xff"));
  CHECK_FALSE(base64Decode("+/8", Base64Alphabet::kUrl));
  CHECK_FALSE(base64Decode("-_8", Base64Alphabet::kStandard));
}

TEST_CASE("base64 decode skips line breaks and rejects garbage", "[config]") {
  CHECK(base64Decode("Zm9v\nYmFy\n") == std::string("foobar"));
  CHECK_FALSE(base64Decode("Zm9v!"));
  CHECK_FALSE(base64Decode("Z"));         // a lone character carries no whole byte
  CHECK_FALSE(base64Decode("Zg==Zg=="));  // data after padding
}

TEST_CASE("base64 round-trips random bytes", "[config]") {
  std::mt19937 rnd(42);
  for (int n = 0; n < 200; ++n) {
    std::string data(size_t(rnd() % 64), '\0');
    for (char& c : data) c = char(rnd());
    for (auto alphabet : {Base64Alphabet::kStandard, Base64Alphabet::kUrl}) {
      REQUIRE(base64Decode(base64Encode(data, alphabet), alphabet) == data);
    }
  }
}
