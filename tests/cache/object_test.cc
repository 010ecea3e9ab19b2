#include "cache/object.h"

#include <catch2/catch.hpp>

using kcp::cache::parseJsonObject;
using kcp::cache::parseResourceVersion;

TEST_CASE("objects keep their bytes and expose key, uid, resourceVersion, labels", "[cache]") {
  const std::string json =
      R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","namespace":"ns",)"
      R"("uid":"u-1","resourceVersion":"1234","labels":{"z":"1","a":"2"}},"data":{"k":"v"}})";
  std::string error;
  const auto obj = parseJsonObject(json, &error);
  REQUIRE(obj);
  CHECK(obj->key == "ns/cm");
  CHECK(obj->uid == "u-1");
  CHECK(obj->resource_version == 1234);
  CHECK(obj->labels == std::vector<std::pair<std::string, std::string>>{{"a", "2"}, {"z", "1"}});
  CHECK(obj->json == json);
}

TEST_CASE("cluster-scoped objects are keyed by name", "[cache]") {
  const auto obj = parseJsonObject(R"({"metadata":{"name":"n1","resourceVersion":"7"}})", nullptr);
  REQUIRE(obj);
  CHECK(obj->key == "n1");
}

TEST_CASE("malformed objects are rejected with a reason", "[cache]") {
  const auto error = [](std::string json) {
    std::string e;
    return parseJsonObject(std::move(json), &e) ? std::string("accepted") : e;
  };
  CHECK(error("{").find("invalid JSON") != std::string::npos);
  CHECK(error("[]") == "not a JSON object");
  CHECK(error(R"({"metadata":1})") == "no metadata");
  CHECK(error(R"({"metadata":{"resourceVersion":"1"}})") == "metadata.name missing");
  CHECK(error(R"({"metadata":{"name":"a","resourceVersion":"01"}})").find("resourceVersion") !=
        std::string::npos);
  CHECK(error(R"({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":1}}})") ==
        "label value is not a string");
  CHECK(error(std::string(100000, '[')).find("invalid JSON") != std::string::npos);
}

TEST_CASE("resourceVersions are canonical decimal uint64", "[cache]") {
  uint64_t v = 0;
  CHECK(parseResourceVersion("0", v));
  CHECK(v == 0);
  CHECK(parseResourceVersion("18446744073709551615", v));
  CHECK(v == 18446744073709551615ull);
  CHECK_FALSE(parseResourceVersion("18446744073709551616", v));
  CHECK_FALSE(parseResourceVersion("", v));
  CHECK_FALSE(parseResourceVersion("-1", v));
  CHECK_FALSE(parseResourceVersion("1a", v));
  CHECK_FALSE(parseResourceVersion("007", v));
}
