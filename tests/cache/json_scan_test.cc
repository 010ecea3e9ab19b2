#include "cache/json_scan.h"

#include <catch2/catch.hpp>

using namespace kcp::cache;

// Bodies as kube-apiserver 1.37 wrote them in the test cluster.
TEST_CASE("LIST bodies: items are exact byte spans; list metadata is read", "[cache]") {
  const std::string body =
      R"({"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"17293","continue":"eyJ2Ijo","remainingItemCount":41},"items":[)"
      R"({"metadata":{"name":"probe","namespace":"team-a","resourceVersion":"17293","managedFields":[{"fieldsV1":{"f:data":{".":{},"f:a":{}}}}]},"data":{"a":"b"}},)"
      R"({"metadata":{"name":"w1","namespace":"team-a","resourceVersion":"6143"}}]})"
      "\n";
  std::string error;
  const auto page = scanJsonList(body, &error);
  REQUIRE(page);
  CHECK(page->kind == "ConfigMapList");
  CHECK(page->api_version == "v1");
  CHECK(page->resource_version == "17293");
  CHECK(page->continue_token == "eyJ2Ijo");
  CHECK(page->remaining_item_count == 41);
  REQUIRE(page->items.size() == 2);
  CHECK(
      page->items[0] ==
      R"({"metadata":{"name":"probe","namespace":"team-a","resourceVersion":"17293","managedFields":[{"fieldsV1":{"f:data":{".":{},"f:a":{}}}}]},"data":{"a":"b"}})");
  CHECK(page->items[1] ==
        R"({"metadata":{"name":"w1","namespace":"team-a","resourceVersion":"6143"}})");
  CHECK(page->items[0].data() >= body.data());  // spans into the body, not copies
}

TEST_CASE("LIST bodies: custom resources (sorted keys), empty lists, garbage", "[cache]") {
  std::string error;
  const auto cr = scanJsonList(
      R"({"apiVersion":"example.com/v1","items":[{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"},"spec":{"items":[1,{"x":[]}]}}],"kind":"WidgetList","metadata":{"continue":"","resourceVersion":"9"}})",
      &error);
  REQUIRE(cr);
  CHECK(cr->kind == "WidgetList");
  REQUIRE(cr->items.size() == 1);
  CHECK(
      cr->items[0] ==
      R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"},"spec":{"items":[1,{"x":[]}]}})");
  CHECK_FALSE(cr->remaining_item_count);

  const auto empty = scanJsonList(
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":null})",
      &error);
  REQUIRE(empty);
  CHECK(empty->items.empty());
  CHECK(empty->resource_version == "5");

  CHECK_FALSE(scanJsonList(R"({"items":[{"a":1})", &error));
  CHECK(error.find("invalid JSON") != std::string::npos);
  CHECK_FALSE(scanJsonList(std::string(100000, '['), &error));
  // Nested "items" keys inside objects are not the list's items.
  const auto nested = scanJsonList(R"({"metadata":{},"items":[{"items":[{"x":1}]}]})", &error);
  REQUIRE(nested);
  REQUIRE(nested->items.size() == 1);
  CHECK(nested->items[0] == R"({"items":[{"x":1}]})");
}

TEST_CASE("watch events: type and object span", "[cache]") {
  const std::string line =
      R"({"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"probe","resourceVersion":"17293"},"data":{"a":"b"}}})";
  std::string error;
  const auto e = scanJsonWatchEvent(line, &error);
  REQUIRE(e);
  CHECK(e->type == "ADDED");
  CHECK(
      e->object ==
      R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"probe","resourceVersion":"17293"},"data":{"a":"b"}})");
  const auto bookmark = scanJsonWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}})",
      &error);
  REQUIRE(bookmark);
  CHECK(bookmark->type == "BOOKMARK");
  CHECK_FALSE(scanJsonWatchEvent(R"({"type":"ADDED"})", &error));
  CHECK_FALSE(scanJsonWatchEvent("{\"type\":\"ADDED\",\"object\":{}", &error));
}

TEST_CASE("type meta: a GET/watch object becomes its list-item form and back", "[cache]") {
  const std::string get =
      R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"probe"},"data":{"a":"b"}})";
  const auto item = stripTypeMeta(get, "ConfigMap", "v1");
  REQUIRE(item);
  CHECK(*item == R"({"metadata":{"name":"probe"},"data":{"a":"b"}})");
  CHECK(typeMetaPrefix("ConfigMap", "v1") + item->substr(1) == get);
  CHECK_FALSE(stripTypeMeta(R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{}})",
                            "Widget", "example.com/v1"));
  CHECK_FALSE(stripTypeMeta(get, "Secret", "v1"));
}

TEST_CASE("an object's metadata.resourceVersion is rewritten in place, nothing else", "[cache]") {
  using kcp::cache::withResourceVersion;
  // Sorted keys (custom resources): a label named resourceVersion comes first.
  const std::string cr =
      R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"labels":{"resourceVersion":"7"},)"
      R"("name":"w","resourceVersion":"7"},"spec":{"resourceVersion":"7"}})";
  CHECK(
      withResourceVersion(cr, 1234) ==
      R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"labels":{"resourceVersion":"7"},)"
      R"("name":"w","resourceVersion":"1234"},"spec":{"resourceVersion":"7"}})");
  CHECK(withResourceVersion(R"({"metadata":{"name":"a","resourceVersion":"99"}})", 5) ==
        R"({"metadata":{"name":"a","resourceVersion":"5"}})");
  CHECK_FALSE(withResourceVersion(R"({"metadata":{"name":"a"}})", 5));
  CHECK_FALSE(withResourceVersion("{", 5));
}

TEST_CASE("the metadata span of a typed object in list-item form", "[cache]") {
  using kcp::cache::metadataEnd;
  const std::string o = R"({"metadata":{"name":"a","annotations":{"x":"}\"{["}},"data":{"k":"}"}})";
  const size_t end = metadataEnd(o);
  REQUIRE(end > 0);
  CHECK(o.substr(1, end - 1) == R"("metadata":{"name":"a","annotations":{"x":"}\"{["}})");
  CHECK(metadataEnd(R"({"apiVersion":"example.com/v1","metadata":{}})") == 0);
  CHECK(metadataEnd(R"({"metadata":{"name":"a")") == 0);
}
