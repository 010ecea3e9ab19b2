#include "proxy/serving/list_plan.h"

#include <catch2/catch.hpp>
#include <random>

#include "config/base64.h"
#include "encoder/continue_token.h"
#include "proxy/serving/get_plan.h"

using kcp::cache::ObjectPtr;
using kcp::proxy::CachedResource;
using kcp::proxy::ListOptions;
using kcp::proxy::planList;
using kcp::proxy::RequestInfo;
using kcp::proxy::selectPage;

namespace {

ObjectPtr object(const std::string& ns, const std::string& name, uint64_t rv,
                 const std::string& app) {
  std::string error;
  auto o = kcp::cache::parseJsonObject(R"({"metadata":{"name":")" + name + R"(","namespace":")" +
                                           ns + R"(","resourceVersion":")" + std::to_string(rv) +
                                           R"(","labels":{"app":")" + app +
                                           R"("}},"spec":{"nodeName":"n-)" + app + R"("}})",
                                       &error, {{"spec.nodeName", {"spec", "nodeName"}}});
  REQUIRE(o);
  return o;
}

struct Fixture {
  kcp::cache::Store store;
  CachedResource resource;
  Fixture() {
    resource.store = &store;
    resource.fields = {true, {{"spec.nodeName", {"spec", "nodeName"}}}};
  }
  ListOptions options(const std::string& rv, int64_t limit = 0, std::string labels = "",
                      std::string fields = "") {
    ListOptions o;
    o.resource_version = rv;
    o.limit = limit;
    o.label_selector = std::move(labels);
    o.field_selector = std::move(fields);
    return o;
  }
  // Lists through every page, checking each page's metadata on the way.
  std::vector<std::string> walk(const std::string& ns, ListOptions o, bool expect_remaining) {
    RequestInfo info;
    info.namespace_ = ns;
    std::vector<std::string> keys;
    for (int pages = 0; pages < 1000; ++pages) {
      auto plan = planList(resource, info, o);
      REQUIRE(plan);
      std::vector<ObjectPtr> page;
      const auto meta = selectPage(*plan, page);
      CHECK(int64_t(page.size()) <= o.limit);
      for (const auto& p : page) keys.push_back(p->key);
      if (meta.continue_token.empty()) {
        CHECK_FALSE(meta.remaining_item_count);
        return keys;
      }
      CHECK(bool(meta.remaining_item_count) == expect_remaining);
      o.continue_token = meta.continue_token;
      o.resource_version.clear();
    }
    FAIL("no last page");
    return keys;
  }
};

}  // namespace

TEST_CASE("paginated lists walk a snapshot page by page, as kube-apiserver's cache does",
          "[proxy]") {
  Fixture f;
  std::mt19937 rnd(7);
  std::vector<ObjectPtr> objects;
  std::vector<std::string> all, ns_b, web_in_b;
  for (int ns = 0; ns < 3; ++ns) {
    for (int i = 0; i < 40; ++i) {
      const std::string nsn = std::string(1, char('a' + ns)), app = rnd() % 3 == 0 ? "web" : "db";
      objects.push_back(object(nsn, "o" + std::to_string(100 + i), 10, app));
      all.push_back(objects.back()->key);
      if (ns == 1) ns_b.push_back(objects.back()->key);
      if (ns == 1 && app == "web") web_in_b.push_back(objects.back()->key);
    }
  }
  f.store.replace(objects, 10);
  for (const int64_t limit : {1, 7, 40, 500}) {
    INFO("limit " << limit);
    CHECK(f.walk("", f.options("10", limit), true) == all);  // legacy Exact: rv with a limit
    CHECK(f.walk("b", f.options("10", limit), true) == ns_b);
    CHECK(f.walk("b", f.options("10", limit, "app=web"), false) == web_in_b);
    CHECK(f.walk("b", f.options("10", limit, "", "spec.nodeName=n-web"), false) == web_in_b);
  }
  // Updates after the first page do not show in later pages: they come from its snapshot.
  RequestInfo info;
  auto first = planList(f.resource, info, f.options("10", 60));
  REQUIRE(first);
  std::vector<ObjectPtr> page;
  const auto meta = selectPage(*first, page);
  REQUIRE(meta.remaining_item_count == 60);
  REQUIRE(f.store.apply(kcp::cache::EventType::kAdded, object("c", "zzz", 11, "web"), nullptr));
  ListOptions next;
  next.continue_token = meta.continue_token;
  next.limit = 1000;
  auto second = planList(f.resource, info, next);
  REQUIRE(second);
  page.clear();
  selectPage(*second, page);
  CHECK(page.size() == 60);
  CHECK(page.back()->key == "c/o139");
}

TEST_CASE("resourceVersion modes choose the snapshot or leave the request to kube-apiserver",
          "[proxy]") {
  Fixture f;
  f.store.replace({object("a", "x", 5, "web")}, 5);
  REQUIRE(f.store.apply(kcp::cache::EventType::kAdded, object("a", "y", 8, "web"), nullptr));
  RequestInfo info;
  const auto rv_of = [&](ListOptions o) -> std::optional<uint64_t> {
    auto plan = planList(f.resource, info, o);
    return plan ? std::optional<uint64_t>(plan->resource_version) : std::nullopt;
  };
  CHECK(rv_of(f.options("0")) == 8);
  CHECK(rv_of(f.options("0", 1)) == 8);  // limit ignored for 0...
  CHECK(planList(f.resource, info, f.options("0", 1))->limit == 0);
  CHECK(rv_of(f.options("6")) == 8);     // NotOlderThan by default without a limit
  CHECK(rv_of(f.options("6", 1)) == 6);  // ...Exact with one
  auto exact = f.options("7");
  exact.resource_version_match = "Exact";
  CHECK(rv_of(exact) == 7);
  exact.resource_version = "4";  // older than anything held
  CHECK_FALSE(rv_of(exact));
  CHECK_FALSE(rv_of(f.options("9")));  // newer than the cache: kube-apiserver waits, then 504
  CHECK_FALSE(rv_of(f.options("")));   // consistent read
  CHECK_FALSE(rv_of(f.options("x")));
  auto bad_match = f.options("0");
  bad_match.resource_version_match = "Exact";
  CHECK_FALSE(rv_of(bad_match));
  CHECK_FALSE(rv_of(f.options("0", 0, "app in (")));
  CHECK_FALSE(
      rv_of(f.options("0", 0, "", "status.phase=Running")));  // not a field of this resource
  auto with_token = f.options("0");
  with_token.continue_token = kcp::encoder::encodeContinueToken({8, "a/x\\0"});
  CHECK_FALSE(rv_of(with_token));  // continue with a resourceVersion: kube-apiserver answers 400
}

TEST_CASE("answerSmallerThan measures what a plan would answer: its selection, its first page",
          "[proxy]") {
  Fixture f;
  std::vector<ObjectPtr> objects;
  size_t web_bytes = 0, all_bytes = 0;
  for (int i = 0; i < 30; ++i) {
    objects.push_back(object("a", "o" + std::to_string(100 + i), 10, i % 10 == 0 ? "web" : "db"));
    all_bytes += objects.back()->bytes.size();
    if (i % 10 == 0) web_bytes += objects.back()->bytes.size();
  }
  f.store.replace(objects, 10);
  RequestInfo info;
  info.namespace_ = "a";
  const auto plan = [&](ListOptions o) {
    auto p = planList(f.resource, info, o);
    REQUIRE(p);
    return *p;
  };
  CHECK(kcp::proxy::answerSmallerThan(plan(f.options("0")), all_bytes + 1));
  CHECK_FALSE(kcp::proxy::answerSmallerThan(plan(f.options("0")), all_bytes));
  CHECK(kcp::proxy::answerSmallerThan(plan(f.options("0", 0, "app=web")), web_bytes + 1));
  CHECK_FALSE(kcp::proxy::answerSmallerThan(plan(f.options("0", 0, "app=web")), web_bytes));
  // A page of 2 (an Exact read with a limit): only its first two objects count.
  CHECK(kcp::proxy::answerSmallerThan(plan(f.options("10", 2)),
                                      objects[0]->bytes.size() + objects[1]->bytes.size() + 1));
  info.namespace_ = "none";
  CHECK(kcp::proxy::answerSmallerThan(plan(f.options("0")), 1));  // nothing at all
}

namespace {

// A transport whose LIST the test answers; the watch after it stays open.
struct ListOnlyTransport : kcp::cache::ReflectorTransport {
  std::function<void(int, std::string)> pending;
  void get(const std::string&, std::function<void(int, std::string)> done) override {
    pending = std::move(done);
  }
  std::function<void(int, std::string)> end;
  void watch(const std::string&, std::function<void(std::string_view)>,
             std::function<void(int, std::string)> on_end) override {
    end = std::move(on_end);
  }
  void cancelWatch() override {}
  void after(std::chrono::milliseconds, std::function<void()>) override {}
};

std::string configMapList(int count, size_t size, uint64_t rv) {
  std::string body =
      R"({"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":")" +
      std::to_string(rv) + R"("},"items":[)";
  for (int i = 0; i < count; ++i) {
    body += (i ? "," : "") + std::string(R"({"metadata":{"name":"c)") + std::to_string(i) +
            R"(","namespace":"a","resourceVersion":")" + std::to_string(i + 1) +
            R"("},"data":{"k":")" + std::string(size, 'x') + R"("}})";
  }
  return body + "]}";
}

}  // namespace

TEST_CASE(
    "a consistent LIST: a small answer goes upstream while the cache is current; else the cache "
    "waits",
    "[serving]") {
  using kcp::proxy::consistentListOptions;
  using kcp::proxy::isConsistentList;
  RequestInfo info;
  info.namespace_ = "a";
  ListOptions consistent;
  CHECK(isConsistentList(consistent));
  ListOptions at_zero;
  at_zero.resource_version = "0";
  CHECK_FALSE(isConsistentList(at_zero));
  for (const bool large : {false, true}) {
    kcp::cache::Store store;
    ListOnlyTransport transport;
    kcp::cache::Reflector reflector({"/api/v1/configmaps", "ConfigMap", "v1"}, store, transport);
    CachedResource resource;
    resource.store = &store;
    resource.reflector = &reflector;
    reflector.start();
    transport.pending(200, configMapList(large ? 100 : 3, 2000, 500));
    REQUIRE(reflector.synced());
    const auto options =
        consistentListOptions(resource, info, consistent, std::chrono::steady_clock::now());
    CAPTURE(large);
    // 3 x 2 KB: under 128 KiB, forwarded; 100 x 2 KB: over, served once the cache reaches upstream.
    CHECK(bool(options) == large);
    if (options) CHECK(options->resource_version_match == "NotOlderThan");
    // The watch breaks: a stale cache may mean kube-apiserver is out of
    // reach, so even a small answer waits for the probe (--max-staleness decides).
    transport.end(0, "connection reset");
    CHECK(consistentListOptions(resource, info, consistent,
                                std::chrono::steady_clock::now() + std::chrono::seconds(1)));
  }
}

TEST_CASE("a consistent read that ran out of time is not tried again for a while", "[serving]") {
  CachedResource resource;
  const auto now = std::chrono::steady_clock::now();
  CHECK(resource.consistentReadsWorthTrying(now));
  resource.consistent_reads_forwarded_until =
      (now + std::chrono::seconds(10)).time_since_epoch().count();
  CHECK_FALSE(resource.consistentReadsWorthTrying(now));
  CHECK(resource.consistentReadsWorthTrying(now + std::chrono::seconds(11)));
}

TEST_CASE("a GET is served from the cache at resourceVersion 0 or N, consistent without one",
          "[serving]") {
  using kcp::proxy::getMinResourceVersion;
  bool consistent;
  CHECK(getMinResourceVersion("resourceVersion=0", &consistent) == std::optional<uint64_t>(0));
  CHECK_FALSE(consistent);
  CHECK(getMinResourceVersion("resourceVersion=42&timeout=5s", &consistent) ==
        std::optional<uint64_t>(42));
  CHECK_FALSE(getMinResourceVersion("", &consistent));
  CHECK(consistent);
  CHECK_FALSE(getMinResourceVersion("resourceVersion=0&pretty=true",
                                    &consistent));  // pretty-printed: upstream
  CHECK_FALSE(consistent);
  CHECK_FALSE(getMinResourceVersion("resourceVersion=x", &consistent));
}
