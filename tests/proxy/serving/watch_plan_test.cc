#include "proxy/serving/watch_plan.h"

#include <catch2/catch.hpp>

using kcp::proxy::CachedResource;
using kcp::proxy::ListOptions;
using kcp::proxy::planWatch;
using kcp::proxy::RequestInfo;

namespace {

kcp::cache::ObjectPtr object(const std::string& name, uint64_t rv) {
  return kcp::cache::parseJsonObject(R"({"metadata":{"name":")" + name +
                                         R"(","namespace":"ns","resourceVersion":")" +
                                         std::to_string(rv) + R"("}})",
                                     nullptr);
}

struct Fixture {
  kcp::cache::Store store{kcp::cache::StoreLimits{2, 1 << 20, std::chrono::seconds(300), 100,
                                                  std::chrono::seconds(75)}};
  CachedResource resource;
  RequestInfo info;
  Fixture() {
    resource.store = &store;
    store.replace({object("a", 10)}, 10);
    for (uint64_t rv : {11, 12, 13})
      REQUIRE(store.apply(kcp::cache::EventType::kAdded, object("o" + std::to_string(rv), rv),
                          nullptr));
  }
  std::optional<kcp::proxy::WatchPlan> plan(const std::string& query, uint64_t upstream_rv = 0,
                                            bool* consistent = nullptr) {
    auto options = kcp::proxy::parseListOptions(query);
    REQUIRE(options);
    bool c;
    auto p = planWatch(resource, info, *options, upstream_rv, &c);
    if (consistent != nullptr) *consistent = c;
    return p;
  }
};

}  // namespace

TEST_CASE("watches from \"\" or \"0\" are watch-lists, as kube-apiserver 1.37 defaults them",
          "[proxy]") {
  Fixture f;
  auto p = f.plan("watch=1&resourceVersion=0&allowWatchBookmarks=true");
  REQUIRE(p);
  CHECK(p->initial);
  CHECK(
      p->initial_events_end);  // bookmarks allowed: the annotated bookmark ends the initial events
  CHECK(p->from == 13);
  p = f.plan("watch=1&resourceVersion=0");
  REQUIRE(p);
  CHECK(p->initial);
  CHECK_FALSE(p->initial_events_end);
  bool consistent = false;
  p = f.plan("watch=1", 12, &consistent);
  CHECK(consistent);  // learn etcd's revision first
  REQUIRE(p);
  CHECK(p->initial->resource_version == 13);
  CHECK_FALSE(f.plan("watch=1", 14));  // the cache is not there yet: forwarded
}

TEST_CASE("watches from a resourceVersion replay the history, or 410 when it is gone", "[proxy]") {
  Fixture f;
  auto p = f.plan("watch=1&resourceVersion=12");
  REQUIRE(p);
  CHECK_FALSE(p->initial);
  CHECK(p->from == 12);
  p = f.plan("watch=1&resourceVersion=10");  // the history holds 2 events: 12 and 13
  REQUIRE(p);
  CHECK(p->expired == 10);
  CHECK_FALSE(
      f.plan("watch=1&resourceVersion=99"));  // from the future: kube-apiserver holds it open
  p = f.plan("watch=1&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan");
  REQUIRE(p);
  CHECK_FALSE(p->initial);
  CHECK(p->from == 13);
}

TEST_CASE("watch options kube-apiserver refuses are forwarded for its 422", "[proxy]") {
  Fixture f;
  CHECK_FALSE(f.plan("watch=1&sendInitialEvents=true"));  // needs NotOlderThan
  CHECK_FALSE(f.plan(
      "watch=1&resourceVersion=12&resourceVersionMatch=NotOlderThan"));  // needs sendInitialEvents
  CHECK_FALSE(f.plan("watch=1&resourceVersion=12&resourceVersionMatch=Exact"));
  CHECK_FALSE(f.plan("watch=1&limit=5"));
  CHECK_FALSE(f.plan("watch=1&timeoutSeconds=-1"));
}
