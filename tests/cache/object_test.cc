#include "cache/object.h"

#include <catch2/catch.hpp>

#include "cache/selectable_fields.h"

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
  CHECK(obj->labels.pairs() == kcp::cache::Labels::Pairs{{"a", "2"}, {"z", "1"}});
  CHECK(obj->bytes == json);
}

TEST_CASE("name and namespace view the key, in copies too", "[cache]") {
  auto original = parseJsonObject(
      R"({"metadata":{"name":"a-long-object-name","namespace":"ns","resourceVersion":"3"}})",
      nullptr);
  REQUIRE(original);
  CHECK(original->namespace_ == "ns");
  CHECK(original->name == "a-long-object-name");
  const auto copy = std::make_shared<kcp::cache::Object>(*original);
  original.reset();  // the copy must not view the original's key
  CHECK(copy->key == "ns/a-long-object-name");
  CHECK(copy->namespace_ == "ns");
  CHECK(copy->name == "a-long-object-name");
  kcp::cache::Object cluster_scoped;
  cluster_scoped.setName("", "n");  // short: the key's own inline buffer
  const kcp::cache::Object copied(cluster_scoped);
  CHECK(copied.name == "n");
  CHECK(copied.name.data() == copied.key.data());
  CHECK(copied.namespace_.empty());
}

TEST_CASE("labels: sorted, found by key, empty keys and values kept", "[cache]") {
  const kcp::cache::Labels labels{
      {"z", "1"}, {"", "empty-key"}, {"example.com/tier", ""}, {"a", "2"}};
  CHECK(labels.pairs() == kcp::cache::Labels::Pairs{
                              {"", "empty-key"}, {"a", "2"}, {"example.com/tier", ""}, {"z", "1"}});
  CHECK(labels.find("a") == "2");
  CHECK(labels.find("example.com/tier") == "");
  CHECK(labels.find("") == "empty-key");
  CHECK_FALSE(labels.find("b"));
  CHECK_FALSE(labels.find("zz"));
  CHECK(kcp::cache::Labels().empty());
  CHECK_FALSE(kcp::cache::Labels().find("a"));
  // Duplicate keys (JSON allows them, kube-apiserver never sends them): the first one is found.
  CHECK(kcp::cache::Labels{{"k", "first"}, {"k", "second"}}.find("k") == "first");
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

TEST_CASE("selectable fields are read once, formatted as kube-apiserver's GetAttrs does",
          "[cache]") {
  const auto& pods = kcp::cache::selectableFields("", "pods", true);
  const auto pod = parseJsonObject(
      R"({"metadata":{"name":"p","namespace":"ns","resourceVersion":"3"},"spec":{"nodeName":"n1","hostNetwork":true},)"
      R"("status":{"phase":"Running","podIP":"10.0.0.9","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}]}})",
      nullptr, pods.fields);
  REQUIRE(pod);
  const auto value = [&](const kcp::cache::ResourceFields& r, const kcp::cache::ObjectPtr& o,
                         std::string label) {
    for (size_t i = 0; i < r.fields.size(); ++i) {
      if (r.fields[i].label == label) return o->fields[i];
    }
    FAIL("no field " << label);
    return std::string();
  };
  CHECK(value(pods, pod, "spec.nodeName") == "n1");
  CHECK(value(pods, pod, "spec.host") == "n1");
  CHECK(value(pods, pod, "spec.hostNetwork") == "true");
  CHECK(value(pods, pod, "status.podIP") == "10.0.0.1");  // podIPs[0], as kube-apiserver
  CHECK(value(pods, pod, "status.podIPs").empty());
  CHECK(value(pods, pod, "spec.restartPolicy").empty());
  const auto& events = kcp::cache::selectableFields("", "events", true);
  const auto event = parseJsonObject(
      R"({"metadata":{"name":"e","namespace":"ns","resourceVersion":"4"},"involvedObject":{"kind":"Pod"},)"
      R"("source":{},"reportingComponent":"kubelet"})",
      nullptr, events.fields);
  REQUIRE(event);
  CHECK(value(events, event, "involvedObject.kind") == "Pod");
  CHECK(value(events, event, "source") ==
        "kubelet");  // reportingComponent when source.component is empty
  const auto& rcs = kcp::cache::selectableFields("", "replicationcontrollers", true);
  const auto rc = parseJsonObject(
      R"({"metadata":{"name":"r","namespace":"ns","resourceVersion":"5"},"status":{}})", nullptr,
      rcs.fields);
  CHECK(value(rcs, rc, "status.replicas") == "0");
  CHECK_FALSE(kcp::cache::selectableFields("", "nodes", false).namespace_selectable);
  CHECK(kcp::cache::selectableFields("example.com", "widgets", true).namespace_selectable);
  CHECK(kcp::cache::selectableFields("example.com", "widgets", true).fields.empty());
}
