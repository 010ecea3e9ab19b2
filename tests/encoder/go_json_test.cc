#include "encoder/go_json.h"

#include <catch2/catch.hpp>

namespace {
std::string quoted(std::string_view s) {
  std::string out;
  kcp::encoder::appendGoJsonString(out, s);
  return out;
}
}  // namespace

// Expected values are what Go's json.Marshal produces for the same strings.
TEST_CASE("JSON strings are escaped as Go's encoding/json does", "[encoder]") {
  CHECK(quoted("plain") == R"("plain")");
  CHECK(quoted("a\"b\\c") == R"("a\"b\\c")");
  CHECK(quoted("\n\r\t") == R"("\n\r\t")");
  CHECK(quoted(std::string("\x01\x1f\0", 3)) == R"("\u0001\u001f\u0000")");
  CHECK(quoted("<a href='x'>&</a>") == R"("\u003ca href='x'\u003e\u0026\u003c/a\u003e")");
  CHECK(quoted("\x7f") == "\"\x7f\"");  // DEL is not escaped by Go
  CHECK(quoted("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(quoted("\xe2\x80\xa8\xe2\x80\xa9") == R"("\u2028\u2029")");
}

TEST_CASE("invalid UTF-8 becomes U+FFFD per bad byte, as in Go", "[encoder]") {
  CHECK(quoted("a\xff"
               "b") ==
        "\"a\xef\xbf\xbd"
        "b\"");
  CHECK(quoted("\xc0\xaf") == "\"\xef\xbf\xbd\xef\xbf\xbd\"");                  // overlong '/'
  CHECK(quoted("\xed\xa0\x80") == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");  // surrogate
  CHECK(quoted("\xe2\x82") == "\"\xef\xbf\xbd\xef\xbf\xbd\"");                  // truncated
}
