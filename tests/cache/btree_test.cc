#include "cache/btree.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>

using kcp::cache::BTree;
using kcp::cache::Object;
using kcp::cache::ObjectPtr;

namespace {

ObjectPtr object(const std::string& key, uint64_t rv) {
  auto o = std::make_shared<Object>();
  o->setName("", key);
  o->resource_version = rv;
  return o;
}

using Model = std::map<std::string, uint64_t>;

// The tree holds exactly the model: same keys in the same order, same
// objects, and every lower-bound walk and count agrees.
void requireEqual(const BTree& tree, const Model& model, std::mt19937& rnd) {
  std::string why;
  INFO(why);
  REQUIRE(tree.valid(&why));
  REQUIRE(tree.size() == model.size());
  auto it = model.begin();
  for (auto c = tree.lowerBound(); c.valid(); c.next(), ++it) {
    REQUIRE(it != model.end());
    REQUIRE(c.object()->key == it->first);
    REQUIRE(c.object()->resource_version == it->second);
  }
  REQUIRE(it == model.end());
  for (int probe = 0; probe < 20; ++probe) {
    const std::string from = "k" + std::to_string(rnd() % 3000);
    auto m = model.lower_bound(from);
    auto c = tree.lowerBound(from);
    REQUIRE(tree.countFrom(from) == size_t(std::distance(m, model.end())));
    for (int steps = 0; steps < 70 && m != model.end(); ++steps, ++m, c.next()) {
      REQUIRE(c.valid());
      REQUIRE(c.object()->key == m->first);
    }
    if (m == model.end()) REQUIRE_FALSE(c.valid());
    const auto found = tree.find(from);
    const auto expected = model.find(from);
    REQUIRE(bool(found) == (expected != model.end()));
    if (found) REQUIRE(found->resource_version == expected->second);
  }
}

}  // namespace

TEST_CASE("btree matches a std::map under random upserts and erases, seeded", "[cache]") {
  for (const uint32_t seed : {1u, 2u, 3u, 42u}) {
    INFO("seed " << seed);
    std::mt19937 rnd(seed);
    BTree tree;
    Model model;
    std::vector<std::pair<BTree, Model>> snapshots;
    uint64_t rv = 0;
    for (int op = 0; op < 20000; ++op) {
      // Phases of growth and shrinkage exercise splits and merges.
      const bool growing = (op / 5000) % 2 == 0;
      const std::string key = "k" + std::to_string(rnd() % 3000);
      if (rnd() % 100 < (growing ? 75u : 30u)) {
        tree = tree.upsert(object(key, ++rv));
        model[key] = rv;
      } else {
        tree = tree.erase(key);
        model.erase(key);
      }
      if (op % 1000 == 0) {
        requireEqual(tree, model, rnd);
        snapshots.emplace_back(tree, model);
      }
    }
    requireEqual(tree, model, rnd);
    // Snapshots are persistent: later updates never changed them.
    for (const auto& [snap, snap_model] : snapshots) requireEqual(snap, snap_model, rnd);
  }
}

TEST_CASE("btree: empty tree, erase of a missing key, replacement keeps the size", "[cache]") {
  BTree t;
  CHECK(t.empty());
  CHECK_FALSE(t.lowerBound().valid());
  CHECK(t.countFrom("") == 0);
  CHECK(t.erase("x").empty());
  t = t.upsert(object("a", 1)).upsert(object("b", 2));
  const BTree before = t;
  t = t.upsert(object("a", 3));
  CHECK(t.size() == 2);
  CHECK(t.find("a")->resource_version == 3);
  CHECK(before.find("a")->resource_version == 1);
  CHECK(t.erase("zz").size() == 2);
  t = t.erase("a").erase("b");
  CHECK(t.empty());
  std::string why;
  CHECK(t.valid(&why));
}

TEST_CASE("btree keys sort in etcd byte order: a namespace is one contiguous range", "[cache]") {
  BTree t;
  for (const char* k : {"a/x", "a-b/x", "a/y", "ab/x", "a-b/a"}) t = t.upsert(object(k, 1));
  std::vector<std::string> keys;
  for (auto c = t.lowerBound(); c.valid(); c.next()) keys.push_back(c.object()->key);
  CHECK(keys == std::vector<std::string>{"a-b/a", "a-b/x", "a/x", "a/y", "ab/x"});
  CHECK(t.countFrom("a/") == 3);
}
