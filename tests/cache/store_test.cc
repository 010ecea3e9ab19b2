#include "cache/store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <thread>

using kcp::cache::EventType;
using kcp::cache::Object;
using kcp::cache::ObjectPtr;
using kcp::cache::Store;
using kcp::cache::StoreLimits;

namespace {

using Model = std::map<std::string, uint64_t>;  // key -> resourceVersion

ObjectPtr object(const std::string& key, uint64_t rv) {
  auto o = std::make_shared<Object>();
  o->setName("", key);
  o->resource_version = rv;
  o->bytes = "{\"rv\":" + std::to_string(rv) + "}";
  return o;
}

Model contents(const kcp::cache::BTree& t) {
  Model m;
  for (auto c = t.lowerBound(); c.valid(); c.next())
    m[c.object()->key] = c.object()->resource_version;
  return m;
}

// Replaying events on a model, as a watcher would.
void replay(Model& m, const std::vector<kcp::cache::EventPtr>& events) {
  for (const auto& e : events) {
    if (e->type == EventType::kDeleted) {
      m.erase(e->object->key);
    } else {
      m[e->object->key] = e->object->resource_version;
    }
  }
}

}  // namespace

TEST_CASE("store: snapshots, history and relist diffs agree with a model, seeded", "[cache]") {
  for (const uint32_t seed : {7u, 8u, 9u}) {
    INFO("seed " << seed);
    std::mt19937 rnd(seed);
    StoreLimits limits;
    limits.history_events = 300;
    limits.snapshots = 200;
    Store store(limits);
    auto now = Store::Clock::time_point{};
    Model model;
    std::map<uint64_t, Model> at;  // the model as of every resourceVersion
    uint64_t rv = 100;
    int snapshot_hits = 0, history_hits = 0, expired = 0;
    store.replace({}, rv, now);
    at[rv] = model;
    for (int op = 0; op < 4000; ++op) {
      now += std::chrono::milliseconds(10);
      const std::string key = "ns/o" + std::to_string(rnd() % 200);
      const unsigned dice = rnd() % 100;
      if (op % 1500 == 1499) {  // a relist: contents replaced, diff handed to watchers
        rv += 1 + rnd() % 5;
        Model next;
        std::vector<ObjectPtr> objs;
        for (const auto& [k, v] : model) {
          if (rnd() % 4 == 0) continue;                  // gone
          const uint64_t orv = rnd() % 3 == 0 ? rv : v;  // changed or not
          objs.push_back(object(k, orv));
          next[k] = orv;
        }
        objs.push_back(object("ns/new" + std::to_string(op), rv));
        next["ns/new" + std::to_string(op)] = rv;
        const auto diff = store.replace(objs, rv, now);
        Model replayed = model;
        replay(replayed, diff);
        REQUIRE(replayed == next);
        model = next;
        at.clear();
        at[rv] = model;
        CHECK_FALSE(store.eventsSince(rv - 1));  // history restarted: older is gone (410)
        continue;
      }
      if (dice < 10) {
        rv += 1;
        store.bookmark(rv, now);
        at[rv] = model;
        continue;
      }
      ++rv;
      std::string error;
      if (model.count(key) && dice < 40) {
        REQUIRE(store.apply(EventType::kDeleted, object(key, rv), &error, now));
        model.erase(key);
      } else {
        REQUIRE(store.apply(model.count(key) ? EventType::kModified : EventType::kAdded,
                            object(key, rv), &error, now));
        model[key] = rv;
      }
      at[rv] = model;

      REQUIRE(contents(store.current()->objects) == model);
      REQUIRE(store.current()->resource_version == rv);
      // Any resourceVersion in reach: the snapshot equals the model then, and
      // its events since replay to now.
      const auto probe = std::next(at.begin(), long(rnd() % at.size()));
      if (auto snap = store.snapshotAt(probe->first)) {
        REQUIRE(contents(snap->objects) == probe->second);
        ++snapshot_hits;
      }
      if (auto events = store.eventsSince(probe->first)) {
        ++history_hits;
        Model m = probe->second;
        replay(m, *events);
        REQUIRE(m == model);
      } else {
        REQUIRE(probe->first < store.oldestResourceVersion());
        ++expired;
      }
    }
    // The probes covered all three cases, not just one.
    CHECK(snapshot_hits > 1000);
    CHECK(history_hits > 1000);
    CHECK(expired > 50);
    const auto stats = store.stats();
    CHECK(stats.objects == model.size());
    CHECK(stats.history_events <= limits.history_events);
    CHECK(stats.snapshots <= limits.snapshots);
  }
}

TEST_CASE("store refuses events that would corrupt it", "[cache]") {
  Store store;
  store.replace({object("a", 5)}, 10);
  std::string error;
  CHECK_FALSE(store.apply(EventType::kModified, object("a", 10), &error));
  CHECK(error.find("does not advance") != std::string::npos);
  CHECK_FALSE(store.apply(EventType::kDeleted, object("zz", 11), &error));
  CHECK(error.find("not cached") != std::string::npos);
  CHECK(store.current()->resource_version == 10);
  CHECK(store.apply(EventType::kAdded, object("a", 12),
                    &error));  // ADDED of a cached key is a modify
  const auto events = store.eventsSince(10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK((*events)[0]->type == EventType::kModified);
  CHECK((*events)[0]->previous->resource_version == 5);
  CHECK_FALSE(store.snapshotAt(13));  // the future is not served
}

TEST_CASE("store history is bounded by age", "[cache]") {
  StoreLimits limits;
  limits.history_age = std::chrono::seconds(10);
  Store store(limits);
  auto t0 = Store::Clock::time_point{};
  store.replace({}, 1, t0);
  std::string error;
  REQUIRE(store.apply(EventType::kAdded, object("a", 2), &error, t0));
  REQUIRE(store.apply(EventType::kAdded, object("b", 3), &error, t0 + std::chrono::seconds(11)));
  CHECK_FALSE(store.eventsSince(1));  // the event at rv 2 aged out
  CHECK(store.eventsSince(2)->size() == 1);
  CHECK(store.oldestResourceVersion() == 2);
}

TEST_CASE("store: one writer and concurrent readers see consistent snapshots",
          "[cache][concurrency]") {
  Store store;
  store.replace({}, 1);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  std::atomic<bool> consistent{true};
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done) {
        const auto snap = store.current();
        // A snapshot is immutable and internally whole, whatever the writer does.
        size_t n = 0;
        uint64_t max_rv = 0;
        for (auto c = snap->objects.lowerBound(); c.valid(); c.next(), ++n) {
          max_rv = std::max(max_rv, c.object()->resource_version);
        }
        if (n != snap->objects.size() || max_rv > snap->resource_version) consistent = false;
        if (auto events = store.eventsSince(snap->resource_version); events) {
          for (const auto& e : *events) {
            if (e->resource_version <= snap->resource_version) consistent = false;
          }
        }
        ++reads;
      }
    });
  }
  std::string error;
  for (uint64_t rv = 2; rv < 20000; ++rv) {
    const std::string key = "ns/o" + std::to_string(rv % 300);
    const bool cached = bool(store.current()->objects.find(key));
    REQUIRE(store.apply(cached && rv % 7 == 0 ? EventType::kDeleted : EventType::kModified,
                        object(key, rv), &error));
  }
  done = true;
  for (auto& t : readers) t.join();
  CHECK(consistent);
  CHECK(reads > 0);
}

TEST_CASE("store cleared (the resource gone upstream): nothing held, nothing to resume from",
          "[cache]") {
  Store store;
  store.replace({object("ns/a", 5), object("ns/b", 6)}, 10);
  std::string error;
  REQUIRE(store.apply(EventType::kModified, object("ns/a", 11), &error));
  int woken = 0;
  store.subscribe([&] { ++woken; });
  const kcp::cache::SnapshotPtr before = store.current();  // a reader's snapshot stays whole
  store.clear();
  CHECK(woken == 1);
  CHECK(store.current()->objects.size() == 0);
  CHECK(store.stats().object_bytes == 0);
  CHECK(store.stats().history_events == 0);
  std::vector<kcp::cache::EventPtr> out;
  CHECK_FALSE(store.eventsAfter(11, 10, out));
  CHECK(before->objects.size() == 2);
  // Back again: a relist starts afresh.
  store.replace({object("ns/c", 30)}, 31);
  CHECK(store.current()->objects.size() == 1);
  CHECK(store.eventsAfter(31, 10, out));
}
