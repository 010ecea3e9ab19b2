#include "cache/protobuf.h"

#include <catch2/catch.hpp>

#include "cache/selectable_fields.h"
#include "encoder/protobuf_frames.h"

namespace pb = kcp::cache::protobuf;

namespace {

std::string entry(std::string_view key, std::string_view value) {
  std::string e;
  pb::appendBytesField(e, 1, key);
  pb::appendBytesField(e, 2, value);
  return e;
}

// An ObjectMeta as gogo-protobuf writes one: every string field, then maps.
std::string objectMeta(std::string_view name, std::string_view ns, std::string_view rv,
                       const std::vector<std::pair<std::string, std::string>>& labels = {},
                       const std::vector<std::pair<std::string, std::string>>& annotations = {}) {
  std::string m;
  pb::appendBytesField(m, 1, name);
  pb::appendBytesField(m, 2, "");
  pb::appendBytesField(m, 3, ns);
  pb::appendBytesField(m, 4, "");
  pb::appendBytesField(m, 5, "uid-1");
  pb::appendBytesField(m, 6, rv);
  m += char(7 << 3);
  pb::appendVarint(m, 0);  // generation
  for (const auto& [k, v] : labels) pb::appendBytesField(m, 11, entry(k, v));
  for (const auto& [k, v] : annotations) pb::appendBytesField(m, 12, entry(k, v));
  pb::appendBytesField(m, 14, "finalizer.example.com");
  return m;
}

std::string object(const std::string& meta, std::string_view spec = "spec-bytes") {
  std::string o;
  pb::appendBytesField(o, 1, meta);
  pb::appendBytesField(o, 2, spec);
  return o;
}

}  // namespace

TEST_CASE("protobuf varints round-trip at every size", "[protobuf]") {
  for (const uint64_t v : {uint64_t(0), uint64_t(1), uint64_t(127), uint64_t(128), uint64_t(300),
                           uint64_t(1) << 35, ~uint64_t(0)}) {
    std::string m;
    m += char(5 << 3);
    pb::appendVarint(m, v);
    CHECK(m.size() == 1 + pb::varintSize(v));
    pb::Reader r(m);
    pb::Field f;
    REQUIRE(r.next(f));
    CHECK(f.number == 5);
    CHECK(f.varint == v);
    CHECK_FALSE(r.next(f));
    CHECK_FALSE(r.failed());
  }
}

TEST_CASE("malformed protobuf is refused, never read past the end", "[protobuf]") {
  std::string m;
  pb::appendBytesField(m, 1, "hello");
  for (size_t cut = 1; cut < m.size(); ++cut) {
    pb::Reader r(std::string_view(m).substr(0, cut));
    pb::Field f;
    CHECK_FALSE(r.next(f));
    CHECK(r.failed());
  }
  pb::Reader group("\x0b");  // wire type 3 (groups)
  pb::Field f;
  CHECK_FALSE(group.next(f));
  CHECK(group.failed());
  CHECK_FALSE(pb::parseObject("\x0a\x05\x0a\x03", nullptr));
  CHECK_FALSE(pb::unwrap("k8s"));
  CHECK_FALSE(pb::unwrap(std::string("k8s\0\x0a\x09", 6)));
}

TEST_CASE("a protobuf object's metadata is read from its ObjectMeta", "[protobuf]") {
  const std::string meta = objectMeta("web-1", "prod", "1234", {{"tier", "web"}, {"app", "shop"}});
  std::string error;
  const auto obj = pb::parseObject(object(meta), &error);
  REQUIRE(obj);
  CHECK(obj->name == "web-1");
  CHECK(obj->namespace_ == "prod");
  CHECK(obj->key == "prod/web-1");
  CHECK(obj->uid == "uid-1");
  CHECK(obj->resource_version == 1234);
  CHECK(obj->labels.pairs() == kcp::cache::Labels::Pairs{{"app", "shop"}, {"tier", "web"}});
  // The metadata field alone is a PartialObjectMetadata message.
  CHECK(std::string_view(obj->bytes).substr(0, obj->metadata_end) == pb::metadataField(obj->bytes));
  CHECK(pb::metadataField(obj->bytes).size() == 1 + pb::varintSize(meta.size()) + meta.size());
  CHECK_FALSE(pb::parseObject(object(objectMeta("", "prod", "1")), &error));
  CHECK(error == "metadata.name missing");
  CHECK_FALSE(pb::parseObject(object(objectMeta("a", "prod", "01")), &error));
}

TEST_CASE(
    "a bookmark is the template with its resourceVersion and annotation, in gogo's field order",
    "[protobuf]") {
  const std::string empty = object(objectMeta("", "", "5"), "");
  const auto moved = pb::withResourceVersion(empty, 987654);
  REQUIRE(moved);
  CHECK(*moved == object(objectMeta("", "", "987654"), ""));
  CHECK(pb::resourceVersion(*moved) == 987654u);
  const auto end = pb::withResourceVersion(
      empty, 42,
      std::pair<std::string_view, std::string_view>("k8s.io/initial-events-end", "true"));
  REQUIRE(end);
  CHECK(*end == object(objectMeta("", "", "42", {}, {{"k8s.io/initial-events-end", "true"}}), ""));
  // Among other annotations, by key.
  const std::string annotated =
      object(objectMeta("a", "ns", "7", {{"l", "1"}}, {{"a", "1"}, {"z", "2"}}));
  const auto inserted = pb::withResourceVersion(
      annotated, 8, std::pair<std::string_view, std::string_view>("m", "x"));
  REQUIRE(inserted);
  CHECK(*inserted ==
        object(objectMeta("a", "ns", "8", {{"l", "1"}}, {{"a", "1"}, {"m", "x"}, {"z", "2"}})));
  CHECK_FALSE(pb::withResourceVersion("not protobuf", 1));
}

TEST_CASE("a protobuf LIST is its envelope, ListMeta and items, and reads back", "[protobuf]") {
  const std::vector<std::string> items = {object(objectMeta("a", "ns", "10")),
                                          object(objectMeta("b", "ns", "11"))};
  size_t items_size = 0;
  std::string body_items;
  for (const auto& i : items) {
    items_size += kcp::encoder::protobufItemSize(i.size());
    body_items += kcp::encoder::protobufItemPrefix(i.size()) + i;
  }
  const auto frame = kcp::encoder::protobufListFrame("PodList", "v1", {12, "token", 3}, items_size);
  const std::string body = frame.head + body_items + frame.tail;
  const auto envelope = pb::unwrap(body);
  REQUIRE(envelope);
  CHECK(envelope->api_version == "v1");
  CHECK(envelope->kind == "PodList");
  CHECK(envelope->raw.data() + envelope->raw.size() + pb::kEnvelopeTail.size() ==
        body.data() + body.size());
  std::string error;
  const auto page = pb::scanList(envelope->raw, &error);
  REQUIRE(page);
  CHECK(page->resource_version == "12");
  CHECK(page->continue_token == "token");
  REQUIRE(page->items.size() == 2);
  CHECK(page->items[0] == items[0]);
  CHECK(page->items[1] == items[1]);
}

TEST_CASE("a protobuf watch frame is its length and a WatchEvent around the enveloped object",
          "[protobuf]") {
  const std::string obj = object(objectMeta("a", "ns", "10"));
  const std::string frame =
      kcp::encoder::protobufWatchEventHead("MODIFIED", "v1", "Pod", obj.size()) + obj +
      std::string(pb::kEnvelopeTail);
  const auto* p = reinterpret_cast<const uint8_t*>(frame.data());
  const size_t length = size_t(p[0]) << 24 | size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3];
  CHECK(length == frame.size() - 4);
  std::string error;
  const auto event = pb::scanWatchEvent(std::string_view(frame).substr(4), &error);
  REQUIRE(event);
  CHECK(event->type == "MODIFIED");
  const auto envelope = pb::unwrap(event->object);
  REQUIRE(envelope);
  CHECK(envelope->kind == "Pod");
  CHECK(envelope->raw == obj);
}

TEST_CASE("a damaged ListMeta or RawExtension is refused, not read in part", "[protobuf]") {
  std::string error;
  std::string list;
  pb::appendBytesField(list, 1,
                       std::string("\x12\x02"
                                   "12"
                                   "\x1a\x09"
                                   "cut",
                                   9));  // continue runs past ListMeta's end
  pb::appendBytesField(list, 2, object(objectMeta("a", "ns", "10")));
  CHECK_FALSE(pb::scanList(list, &error));
  CHECK(error == "malformed protobuf ListMeta");
  std::string extension;
  pb::appendBytesField(extension, 1, "object");
  extension += "\x0a\x7f";  // a second raw field whose length runs past the end
  std::string event;
  pb::appendBytesField(event, 1, "ADDED");
  pb::appendBytesField(event, 2, extension);
  CHECK_FALSE(pb::scanWatchEvent(event, &error));
  CHECK(error == "malformed protobuf watch event");
}

TEST_CASE("a protobuf object's selectable fields are read by their field numbers", "[protobuf]") {
  const auto fields = kcp::cache::selectableFields("", "pods", true).fields;
  // PodSpec {3: restartPolicy, 10: nodeName, 11: hostNetwork}, PodStatus {1: phase, 12: podIPs [{1:
  // ip}]}.
  std::string spec, status, ip1, ip2;
  pb::appendBytesField(spec, 3, "Always");
  pb::appendBytesField(spec, 10, "node-1");
  spec += char(11 << 3);
  pb::appendVarint(spec, 1);
  pb::appendBytesField(status, 1, "Running");
  pb::appendBytesField(ip1, 1, "10.0.0.1");
  pb::appendBytesField(ip2, 1, "fd00::1");
  pb::appendBytesField(status, 12, ip1);
  pb::appendBytesField(status, 12, ip2);
  std::string pod;
  pb::appendBytesField(pod, 1, objectMeta("a", "ns", "10"));
  pb::appendBytesField(pod, 2, spec);
  pb::appendBytesField(pod, 3, status);
  std::string error;
  const auto obj = pb::parseObject(pod, &error, fields);
  REQUIRE(obj);
  const auto value = [&](const std::string& label) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].label == label) return obj->fields[i];
    }
    FAIL("no field " << label);
    return std::string();
  };
  CHECK(value("spec.nodeName") == "node-1");
  CHECK(value("spec.host") == "node-1");
  CHECK(value("spec.restartPolicy") == "Always");
  CHECK(value("spec.hostNetwork") == "true");
  CHECK(value("spec.schedulerName").empty());  // absent: the zero value
  CHECK(value("status.phase") == "Running");
  CHECK(value("status.podIP") == "10.0.0.1");  // the first of podIPs
  CHECK(value("status.podIPs").empty());

  // A core Event's source falls back to reportingComponent (14); a Job's count is a signed int32.
  const auto event_fields = kcp::cache::selectableFields("", "events", true).fields;
  std::string event;
  pb::appendBytesField(event, 1, objectMeta("e", "ns", "3"));
  pb::appendBytesField(event, 5, "");  // EventSource with no component
  pb::appendBytesField(event, 14, "kubelet");
  const auto e = pb::parseObject(event, &error, event_fields);
  REQUIRE(e);
  for (size_t i = 0; i < event_fields.size(); ++i) {
    if (event_fields[i].label == "source") CHECK(e->fields[i] == "kubelet");
  }
  const auto job_fields = kcp::cache::selectableFields("batch", "jobs", true).fields;
  std::string job_status, job;
  job_status += char(5 << 3);
  pb::appendVarint(job_status,
                   uint64_t(int64_t(-1)));  // gogo writes negative int32s as 10-byte varints
  pb::appendBytesField(job, 1, objectMeta("j", "ns", "4"));
  pb::appendBytesField(job, 3, job_status);
  const auto j = pb::parseObject(job, &error, job_fields);
  REQUIRE(j);
  CHECK(j->fields[0] == "-1");
  // A field of the wrong wire type is refused, not guessed.
  std::string bad_status, bad;
  bad_status += char(1 << 3);
  pb::appendVarint(bad_status, 7);  // phase as a varint
  pb::appendBytesField(bad, 1, objectMeta("b", "ns", "5"));
  pb::appendBytesField(bad, 3, bad_status);
  CHECK_FALSE(pb::parseObject(bad, &error, fields));
}
