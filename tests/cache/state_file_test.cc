#include "cache/state_file.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

using namespace kcp::cache;

namespace {

ObjectPtr object(const std::string& key, uint64_t rv, size_t size) {
  auto o = std::make_shared<Object>();
  o->key = key;
  o->resource_version = rv;
  o->bytes = "{\"k\":\"" + key + "\",\"pad\":\"" + std::string(size, 'x') + "\"}";
  return o;
}

std::string readAll(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct TempDir {
  std::string path =
      (std::filesystem::temp_directory_path() / ("kcp-state-test-" + std::to_string(getpid())))
          .string();
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("state file: a snapshot saved and read back is the same objects, in key order",
          "[cache]") {
  TempDir dir;
  BTree tree;
  std::mt19937 rnd(3);
  std::vector<std::string> want;
  for (int i = 0; i < 300;
       ++i) {  // several B+tree leaves, objects up to 2 MiB (past one write buffer)
    const std::string key = "ns-" + std::to_string(i % 7) + "/obj-" + std::to_string(i);
    tree = tree.upsert(object(key, 1000 + i, i == 17 ? (2 << 20) : rnd() % 3000));
  }
  for (auto c = tree.lowerBound(); c.valid(); c.next()) want.push_back(c.object()->bytes);
  Snapshot snap{tree, 4242, {}};
  const std::string file = dir.path + "/" + stateFileName("deployments.apps", Encoding::kProtobuf);
  CHECK(file.ends_with("/deployments.apps.protobuf.state"));
  std::string error;
  REQUIRE(writeState(file,
                     {"deployments.apps", Encoding::kProtobuf, "/apis/apps/v1/deployments",
                      "Deployment", "apps/v1", 0, true},
                     snap, &error));
  CHECK_FALSE(std::filesystem::exists(file + ".tmp"));
  auto saved = readState(file, &error);
  REQUIRE(saved);
  CHECK(saved->header.resource == "deployments.apps");
  CHECK(saved->header.encoding == Encoding::kProtobuf);
  CHECK(saved->header.path == "/apis/apps/v1/deployments");
  CHECK(saved->header.kind == "Deployment");
  CHECK(saved->header.api_version == "apps/v1");
  CHECK(saved->header.resource_version == 4242);  // the snapshot's, whatever the header said
  CHECK(saved->header.sorted_list_keys);
  CHECK(saved->objects == want);

  // An empty store saves and loads too.
  REQUIRE(writeState(
      file, {"configmaps", Encoding::kJson, "/api/v1/configmaps", "ConfigMap", "v1", 0, false},
      Snapshot{BTree{}, 7, {}}, &error));
  saved = readState(file, &error);
  REQUIRE(saved);
  CHECK(saved->objects.empty());
  CHECK(saved->header.resource_version == 7);
}

TEST_CASE("state file: a truncated, altered or foreign file is refused as a whole", "[cache]") {
  TempDir dir;
  BTree tree;
  for (int i = 0; i < 50; ++i) tree = tree.upsert(object("ns/o" + std::to_string(i), 10 + i, 100));
  const std::string file = dir.path + "/x.json.state";
  std::string error;
  REQUIRE(writeState(
      file, {"configmaps", Encoding::kJson, "/api/v1/configmaps", "ConfigMap", "v1", 0, false},
      Snapshot{tree, 99, {}}, &error));
  const std::string good = readAll(file);
  REQUIRE(parseState(good, &error));

  for (size_t cut : {size_t(0), size_t(5), size_t(20), good.size() / 2, good.size() - 1}) {
    CHECK_FALSE(parseState(std::string_view(good).substr(0, cut), &error));
    CHECK_FALSE(error.empty());
  }
  std::mt19937 rnd(5);
  for (int i = 0; i < 200; ++i) {
    std::string bad = good;
    bad[rnd() % bad.size()] ^= char(1 + rnd() % 255);
    error.clear();
    CHECK_FALSE(parseState(bad, &error));
    CHECK_FALSE(error.empty());
  }
  CHECK_FALSE(parseState("{\"items\":[]}", &error));
  CHECK(error == "not a kube-cache-proxy state file");
  CHECK_FALSE(readState(dir.path + "/missing.state", &error));
  CHECK(error.find("missing.state") != std::string::npos);
}
