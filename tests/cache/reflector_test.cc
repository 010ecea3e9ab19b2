#include "cache/reflector.h"

#include <catch2/catch.hpp>
#include <deque>

#include "cache/protobuf.h"
#include "encoder/protobuf_frames.h"

using namespace kcp::cache;

namespace {

// A transport that records what the reflector asks for and lets the test
// answer, so every branch runs deterministically.
class FakeTransport : public ReflectorTransport {
 public:
  void get(const std::string& path, std::function<void(int, std::string)> done) override {
    gets.push_back(path);
    pending_get = std::move(done);
  }
  void watch(const std::string& path, std::function<void(std::string_view)> on_event,
             std::function<void(int, std::string)> on_end) override {
    watches.push_back(path);
    event = std::move(on_event);
    end = std::move(on_end);
  }
  void cancelWatch() override {
    event = nullptr;
    end = nullptr;
    ++cancels;
  }
  void after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    delays.push_back(delay);
    timers.push_back(std::move(fn));
  }
  void answer(int status, std::string body) {
    auto done = std::move(pending_get);
    pending_get = nullptr;
    REQUIRE(done);
    done(status, std::move(body));
  }
  void fireTimer() {
    REQUIRE_FALSE(timers.empty());
    auto fn = std::move(timers.front());
    timers.pop_front();
    fn();
  }

  std::vector<std::string> gets, watches;
  std::function<void(int, std::string)> pending_get;
  std::function<void(std::string_view)> event;
  std::function<void(int, std::string)> end;
  std::deque<std::function<void()>> timers;
  std::vector<std::chrono::milliseconds> delays;
  int cancels = 0;
};

std::string item(const std::string& name, int rv, const std::string& data = "v") {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"ns","resourceVersion":")" +
         std::to_string(rv) + R"("},"data":{"k":")" + data + R"("}})";
}
std::string page(const std::vector<std::string>& items, int rv, const std::string& cont = "") {
  std::string body =
      R"({"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":")" +
      std::to_string(rv) + R"(")" + (cont.empty() ? "" : R"(,"continue":")" + cont + "\"") +
      R"(},"items":[)";
  for (size_t i = 0; i < items.size(); ++i) body += (i ? "," : "") + items[i];
  return body + "]}";
}
std::string event(const std::string& type, const std::string& name, int rv,
                  const std::string& data = "v") {
  return R"({"type":")" + type + R"(","object":{"kind":"ConfigMap","apiVersion":"v1",)" +
         item(name, rv, data).substr(1) + "}";
}
std::map<std::string, uint64_t> contents(Store& s) {
  std::map<std::string, uint64_t> m;
  for (auto c = s.current()->objects.lowerBound(); c.valid(); c.next())
    m[c.object()->key] = c.object()->resource_version;
  return m;
}

}  // namespace

TEST_CASE("reflector: paged LIST, then WATCH with bookmarks, resume and relist", "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/api/v1/configmaps", "ConfigMap", "v1"}, store, t, 1);
  r.start();
  REQUIRE(t.gets.back() == "/api/v1/configmaps?limit=500");
  t.answer(200, page({item("a", 10), item("b", 11)}, 100, "tok1"));
  REQUIRE(t.gets.back() == "/api/v1/configmaps?limit=500&continue=tok1");
  CHECK_FALSE(r.synced());
  t.answer(200, page({item("c", 12)}, 100));
  CHECK(r.synced());
  CHECK(contents(store) ==
        std::map<std::string, uint64_t>{{"ns/a", 10}, {"ns/b", 11}, {"ns/c", 12}});
  REQUIRE(t.watches.back() ==
          "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=100");

  t.event(event("ADDED", "d", 101));
  t.event(event("MODIFIED", "a", 102, "changed"));
  t.event(event("DELETED", "b", 103));
  t.event(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"110"}}})");
  CHECK(contents(store) ==
        std::map<std::string, uint64_t>{{"ns/a", 102}, {"ns/c", 12}, {"ns/d", 101}});
  CHECK(store.current()->resource_version == 110);
  // Stored in list-item form: exactly the bytes a LIST would carry.
  CHECK(store.current()->objects.find("ns/a")->bytes == item("a", 102, "changed"));

  // A normal end (server-side timeout): resume at once from the bookmark.
  t.end(200, "");
  CHECK(t.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=110");

  // A transport failure: back off, then resume the watch (no relist), a
  // short one first whose bookmark shows soon that nothing was missed.
  CHECK_FALSE(r.staleSince());
  t.end(0, "connection reset");
  CHECK(r.state() == Reflector::State::kBackoff);
  CHECK(r.staleSince());
  t.fireTimer();
  CHECK(t.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=110&timeoutSeconds=3");
  CHECK(r.relists() == 0);
  CHECK(r.staleSince());  // not until upstream is heard from
  t.event(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"111"}}})");
  CHECK_FALSE(r.staleSince());
  CHECK(t.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=111");

  // 410 as an ERROR event: relist; the store takes the new truth.
  t.event(
      R"J({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 110 (150)","reason":"Expired","code":410}})J");
  CHECK(t.cancels == 2);
  CHECK(r.relists() == 1);
  t.fireTimer();
  REQUIRE(t.gets.back() == "/api/v1/configmaps?limit=500");
  t.answer(200, page({item("a", 102, "changed"), item("e", 160)}, 200));
  CHECK(contents(store) == std::map<std::string, uint64_t>{{"ns/a", 102}, {"ns/e", 160}});
  CHECK(t.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=200");
  // Relisting restarted the history: watchers older than 200 get 410.
  CHECK_FALSE(store.eventsSince(150));
}

TEST_CASE("reflector: a watch that keeps breaking backs off, and a working one resets the backoff",
          "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/api/v1/configmaps", "ConfigMap", "v1"}, store, t, 1);
  r.start();
  t.answer(200, page({item("a", 5)}, 50));
  for (int i = 0; i < 4; ++i) {
    t.end(0, "connection reset");
    t.fireTimer();
  }
  CHECK(t.delays.back() >= std::chrono::milliseconds(800));
  t.event(event("MODIFIED", "a", 51));  // heard from upstream again
  t.end(0, "connection reset");
  CHECK(t.delays.back() <= std::chrono::milliseconds(200));
}

TEST_CASE("reflector: a warm restart resumes the watch from saved objects and lists only on 410",
          "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/api/v1/configmaps", "ConfigMap", "v1"}, store, t, 1);
  CHECK(r.staleSince());  // nothing known yet
  r.resume({item("a", 10), item("b", 11)}, 100, false);
  CHECK(t.gets.empty());
  CHECK(contents(store) == std::map<std::string, uint64_t>{{"ns/a", 10}, {"ns/b", 11}});
  // Not synced (not served) until kube-apiserver's bookmark shows the replay is over.
  REQUIRE(
      t.watches.back() ==
      "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=100&timeoutSeconds=3");
  t.event(event("MODIFIED", "a", 105, "later"));
  CHECK_FALSE(r.synced());
  CHECK(r.staleSince());
  t.event(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"120"}}})");
  CHECK(r.synced());
  CHECK_FALSE(r.staleSince());
  CHECK(store.current()->resource_version == 120);
  CHECK(t.gets.empty());  // no LIST at all
  CHECK(t.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=120");

  // A quiet resource: kube-apiserver sends no bookmark that would not advance
  // the watch, so the short watch's normal end is what shows it caught up.
  Store quiet;
  FakeTransport tq;
  Reflector rq({"/api/v1/configmaps", "ConfigMap", "v1"}, quiet, tq, 1);
  rq.resume({item("a", 10)}, 100, false);
  CHECK_FALSE(rq.synced());
  tq.end(200, "");
  CHECK(rq.synced());
  CHECK_FALSE(rq.staleSince());
  CHECK(tq.watches.back() ==
        "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=100");

  // Saved too long ago: kube-apiserver answers 410, and the reflector lists.
  Store store2;
  FakeTransport t2;
  Reflector r2({"/api/v1/configmaps", "ConfigMap", "v1"}, store2, t2, 1);
  r2.resume({item("a", 10)}, 100, false);
  t2.event(
      R"J({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 100 (150)","reason":"Expired","code":410}})J");
  CHECK_FALSE(r2.synced());
  t2.fireTimer();
  REQUIRE(t2.gets.back() == "/api/v1/configmaps?limit=500");
  t2.answer(200, page({item("c", 160)}, 200));
  CHECK(r2.synced());
  CHECK(contents(store2) == std::map<std::string, uint64_t>{{"ns/c", 160}});

  // An unusable saved object: list instead.
  Store store3;
  FakeTransport t3;
  Reflector r3({"/api/v1/configmaps", "ConfigMap", "v1"}, store3, t3, 1);
  r3.resume({"{not json"}, 100, false);
  CHECK(t3.gets.back() == "/api/v1/configmaps?limit=500");
  CHECK(t3.watches.empty());
}

TEST_CASE("reflector: bad input and failures lead to a relist with growing backoff", "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/api/v1/configmaps", "ConfigMap", "v1"}, store, t, 1);
  r.start();
  t.answer(503, "unavailable");
  t.fireTimer();
  t.answer(200, "not json");
  t.fireTimer();
  t.answer(410, "expired continue");
  t.fireTimer();
  REQUIRE(t.delays.size() == 3);
  CHECK(t.delays[0] <= t.delays[1] * 2);
  CHECK(t.delays[2] >= std::chrono::milliseconds(400));  // 800 ms with full jitter down to half
  t.answer(200, page({item("a", 5)}, 50));
  CHECK(r.synced());
  // An event that does not advance the store is refused: relist, never guess.
  t.event(event("MODIFIED", "a", 40));
  CHECK(r.relists() == 4);
  CHECK(r.lastError().find("not applicable") != std::string::npos);
  t.fireTimer();
  t.answer(200, page({item("a", 60)}, 60));
  // A DELETED for an object the store never had: relist as well.
  t.event(event("DELETED", "ghost", 61));
  CHECK(r.relists() == 5);
}

namespace {

// A protobuf object as gogo-protobuf writes one: ObjectMeta (name,
// namespace, resourceVersion, annotations), then an empty spec.
std::string protobufObject(
    const std::string& name, const std::string& rv,
    const std::vector<std::pair<std::string, std::string>>& annotations = {}) {
  namespace pb = kcp::cache::protobuf;
  std::string meta;
  pb::appendBytesField(meta, 1, name);
  pb::appendBytesField(meta, 3, name.empty() ? "" : "ns");
  pb::appendBytesField(meta, 6, rv);
  for (const auto& [k, v] : annotations) {
    std::string entry;
    pb::appendBytesField(entry, 1, k);
    pb::appendBytesField(entry, 2, v);
    pb::appendBytesField(meta, 12, entry);
  }
  std::string o;
  pb::appendBytesField(o, 1, meta);
  pb::appendBytesField(o, 2, "");
  return o;
}

// A watch frame as the transport hands it over: without its length prefix.
std::string protobufEvent(const std::string& type, const std::string& object) {
  return (kcp::encoder::protobufWatchEventHead(type, "v1", "Pod", object.size()) + object +
          std::string(kcp::cache::protobuf::kEnvelopeTail))
      .substr(4);
}

}  // namespace

TEST_CASE(
    "reflector: a protobuf cache gets its bookmark template from a watch-list that selects nothing",
    "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/api/v1/pods", "Pod", "v1", {}, Encoding::kProtobuf}, store, t, 1);
  r.start();
  const std::string pod = protobufObject("a", "7");
  const auto frame = kcp::encoder::protobufListFrame("PodList", "v1", {10, "", 0},
                                                     kcp::encoder::protobufItemSize(pod.size()));
  t.answer(200, frame.head + kcp::encoder::protobufItemPrefix(pod.size()) + pod + frame.tail);
  REQUIRE(r.synced());
  CHECK_FALSE(r.bookmarkTemplate());
  // At once, not after a minute: the closing bookmark of a watch-list that selects nothing.
  REQUIRE(t.watches.size() == 1);
  CHECK(t.watches[0].find(
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true") !=
        std::string::npos);
  CHECK(t.watches[0].find("labelSelector=kube-cache-proxy%2Fnone%2C%21kube-cache-proxy%2Fnone") !=
        std::string::npos);
  CHECK(t.watches[0].find("resourceVersion=10") != std::string::npos);
  t.event(
      protobufEvent("BOOKMARK", protobufObject("", "50", {{"k8s.io/initial-events-end", "true"}})));
  REQUIRE(r.bookmarkTemplate());
  CHECK(*r.bookmarkTemplate() == protobufObject("", "50"));  // without the annotation
  CHECK(store.current()->resource_version == 10u);  // that watch saw no events: nothing is claimed
  CHECK(t.cancels == 1);
  REQUIRE(t.watches.size() == 2);  // then the real watch, from the list
  CHECK(t.watches[1].find("sendInitialEvents") == std::string::npos);
  CHECK(t.watches[1].find("resourceVersion=10") != std::string::npos);

  // Without a bookmark (an older kube-apiserver), the real watch starts anyway.
  Store store2;
  FakeTransport t2;
  Reflector r2({"/api/v1/pods", "Pod", "v1", {}, Encoding::kProtobuf}, store2, t2, 1);
  r2.start();
  t2.answer(200, frame.head + kcp::encoder::protobufItemPrefix(pod.size()) + pod + frame.tail);
  t2.end(200, "");
  CHECK_FALSE(r2.bookmarkTemplate());
  REQUIRE(t2.watches.size() == 2);
  CHECK(t2.watches[1].find("sendInitialEvents") == std::string::npos);
}

TEST_CASE(
    "reflector: a resource gone upstream (404) stops it, without retries, until started again",
    "[cache]") {
  Store store;
  FakeTransport t;
  Reflector r({"/apis/example.com/v1/widgets", "Widget", "example.com/v1"}, store, t, 1);
  int gone = 0;
  r.onGone([&] { ++gone; });
  r.start();
  t.answer(200, page({item("a", 5)}, 10));
  REQUIRE(r.synced());
  REQUIRE(t.watches.size() == 1);
  // The CRD is deleted: kube-apiserver ends the watch, and the resumed one is a 404.
  t.end(200, "");
  REQUIRE(t.watches.size() == 2);
  t.end(404, "404 page not found");
  CHECK(gone == 1);
  CHECK(r.gone());
  CHECK_FALSE(r.synced());
  CHECK(r.state() == Reflector::State::kGone);
  CHECK(t.timers.empty());  // no retry, no backoff
  CHECK_FALSE(r.staleSince());
  // It comes back: started again, it lists as at first.
  r.start();
  CHECK_FALSE(r.gone());
  REQUIRE(t.gets.size() == 2);
  t.answer(200, page({item("b", 20)}, 21));
  CHECK(r.synced());
  CHECK(contents(store) == std::map<std::string, uint64_t>{{"ns/b", 20}});
  // A LIST answered 404 is gone too.
  Store store2;
  FakeTransport t2;
  Reflector r2({"/apis/example.com/v1/widgets", "Widget", "example.com/v1"}, store2, t2, 1);
  r2.start();
  t2.answer(404, "404 page not found");
  CHECK(r2.gone());
  CHECK(t2.timers.empty());
}
