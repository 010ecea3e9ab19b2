#include "cache/typed_metadata.h"

#include <catch2/catch.hpp>

#include "cache/object.h"
#include "cache/protobuf.h"

namespace pb = kcp::cache::protobuf;

namespace {

// A custom resource as kube-apiserver lists it: unstructured, keys sorted.
const std::string kWidget =
    R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"annotations":{"a/b":"x\u003cy"},)"
    R"("creationTimestamp":"2026-12-02T11:00:00Z","finalizers":["example.com/f"],"generation":3,)"
    R"("labels":{"app":"web","tier":"front"},"managedFields":[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1",)"
    R"("fieldsV1":{"f:spec":{".":{},"f:size":{}}},"manager":"kubectl","operation":"Update","time":"2026-12-02T11:00:01Z"}],)"
    R"("name":"w1","namespace":"ns","ownerReferences":[{"apiVersion":"v1","blockOwnerDeletion":true,"controller":true,)"
    R"("kind":"ConfigMap","name":"owner","uid":"u-2"}],"resourceVersion":"42","uid":"u-1"},"spec":{"size":1}})";

std::vector<pb::Field> fields(std::string_view message) {
  std::vector<pb::Field> out;
  pb::Reader r(message);
  for (pb::Field f; r.next(f);) out.push_back(f);
  REQUIRE_FALSE(r.failed());
  return out;
}

}  // namespace

TEST_CASE("a custom resource's metadata in ObjectMeta's JSON field order", "[cache]") {
  std::string error;
  const auto m = kcp::cache::typedMetadata(kWidget, &error);
  REQUIRE(m);
  CHECK(
      m->json ==
      R"("metadata":{"name":"w1","namespace":"ns","uid":"u-1","resourceVersion":"42","generation":3,)"
      R"("creationTimestamp":"2026-12-02T11:00:00Z","labels":{"app":"web","tier":"front"},"annotations":{"a/b":"x\u003cy"},)"
      R"("ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"u-2","controller":true,)"
      R"("blockOwnerDeletion":true}],"finalizers":["example.com/f"],"managedFields":[{"manager":"kubectl",)"
      R"("operation":"Update","apiVersion":"example.com/v1","time":"2026-12-02T11:00:01Z","fieldsType":"FieldsV1",)"
      R"("fieldsV1":{"f:spec":{".":{},"f:size":{}}}}]})");
}

TEST_CASE("a custom resource's metadata as gogo-protobuf writes ObjectMeta", "[cache]") {
  std::string error;
  const auto m = kcp::cache::typedMetadata(kWidget, &error);
  REQUIRE(m);
  // A PartialObjectMetadata message: field 1 only, which reads back as an object.
  const auto obj = pb::parseObject(m->protobuf, &error);
  REQUIRE(obj);
  CHECK(obj->key == "ns/w1");
  CHECK(obj->resource_version == 42u);
  CHECK(obj->uid == "u-1");
  CHECK(obj->labels.find("tier") == std::optional<std::string_view>("front"));
  const auto top = fields(m->protobuf);
  REQUIRE(top.size() == 1);
  const auto meta = fields(top[0].bytes);
  std::vector<uint32_t> numbers;
  for (const auto& f : meta) numbers.push_back(f.number);
  // Every non-pointer field, in ascending order; maps and lists once per entry.
  CHECK(numbers == std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 11, 11, 12, 13, 14, 17});
  CHECK(meta[1].bytes.empty());  // generateName, written empty
  CHECK(meta[6].varint == 3);    // generation
  // creationTimestamp: Timestamp {1: seconds, 2: nanos 0}.
  const auto created = fields(meta[7].bytes);
  REQUIRE(created.size() == 2);
  CHECK(created[0].varint == 1796209200u);
  CHECK(created[1].varint == 0);
  CHECK(fields(meta[10].bytes)[1].bytes == "x<y");  // annotation values decoded
  // OwnerReference {1: kind, 3: name, 4: uid, 5: apiVersion, 6: controller, 7: blockOwnerDeletion}.
  std::vector<uint32_t> ref;
  for (const auto& f : fields(meta[11].bytes)) ref.push_back(f.number);
  CHECK(ref == std::vector<uint32_t>{1, 3, 4, 5, 6, 7});
  // ManagedFieldsEntry: fieldsV1 {1: its JSON as written}.
  std::vector<uint32_t> entry;
  std::string_view raw;
  for (const auto& f : fields(meta[13].bytes)) {
    entry.push_back(f.number);
    if (f.number == 7) raw = fields(f.bytes)[0].bytes;
  }
  CHECK(entry == std::vector<uint32_t>{1, 2, 3, 4, 6, 7, 8});
  CHECK(raw == R"({"f:spec":{".":{},"f:size":{}}})");
}

TEST_CASE("typed metadata is made once per object and refused when malformed", "[cache]") {
  std::string error;
  auto obj = kcp::cache::parseJsonObject(kWidget, &error);
  REQUIRE(obj);
  const auto* first = obj->typedMetadata();
  REQUIRE(first != nullptr);
  CHECK(obj->typedMetadata() == first);
  CHECK_FALSE(kcp::cache::typedMetadata(
      R"({"metadata":{"name":"a","creationTimestamp":"yesterday"}})", &error));
  CHECK_FALSE(kcp::cache::typedMetadata(R"({"metadata":{"name":"a","generation":"3"}})", &error));
  CHECK_FALSE(kcp::cache::typedMetadata(R"({"metadata":{"name":"a")", &error));
  CHECK_FALSE(kcp::cache::typedMetadata(R"({"spec":{}})", &error));
  // An empty ObjectMeta: the zero values gogo writes, generation 0, an empty time.
  const std::string field = kcp::cache::emptyObjectMetaField();
  const auto empty = fields(field);
  REQUIRE(empty.size() == 1);
  CHECK(fields(empty[0].bytes).size() == 8);
}
