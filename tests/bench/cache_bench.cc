// Benchmark of the cache's data path on one core, printed as one JSON line:
// watch events applied per second (parse + store update), memory per cached
// object relative to its JSON size, and the cost of a snapshot.
//   build/tests/bench/cache_bench [objects] [object-bytes]
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cache/json_scan.h"
#include "cache/object.h"
#include "cache/store.h"

namespace {

using namespace kcp::cache;
using Clock = std::chrono::steady_clock;

// Bytes the allocator has handed out and not had back: what the objects
// really cost, without the pages a freed-and-reused heap keeps resident.
long heapBytes() {
  return long(mallinfo2().uordblks);
}

long rssBytes() {
  long pages_total = 0, pages_rss = 0;
  std::ifstream("/proc/self/statm") >> pages_total >> pages_rss;
  return pages_rss * sysconf(_SC_PAGESIZE);
}

// A configmap as kube-apiserver writes it in a watch event, ~`size` bytes.
std::string configmap(int i, uint64_t rv, size_t size, std::mt19937& rnd) {
  std::string data;
  static const char* words[] = {"alpha", "bravo",   "charlie", "delta",
                                "echo",  "foxtrot", "golf",    "hotel"};
  while (data.size() < size) {
    data += words[rnd() % 8];
    data += rnd() % 5 == 0 ? "\\n" : " ";
  }
  return R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-)" + std::to_string(i) +
         R"(","namespace":"ns-)" + std::to_string(i % 20) + R"(","uid":"6b6055d3-7259-42b8-b08b-)" +
         std::to_string(100000000000 + i) + R"(","resourceVersion":")" + std::to_string(rv) +
         R"(","creationTimestamp":"2026-11-23T08:46:05Z","labels":{"app":"web","tier":"backend"}},"data":{"config":")" +
         data + R"("}})";
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  const size_t size = argc > 2 ? size_t(std::atoi(argv[2])) : 2000;
  std::mt19937 rnd(1);
  StoreLimits limits;
  limits.history_events = 1000;
  Store store(limits);
  store.replace({}, 1);

  // Initial fill: memory per object.
  std::vector<std::string> events;
  events.reserve(size_t(n));
  uint64_t rv = 1;
  for (int i = 0; i < n; ++i)
    events.push_back(R"({"type":"ADDED","object":)" + configmap(i, ++rv, size, rnd) + "}");
  size_t json_bytes = 0;
  const long rss_before = rssBytes(), heap_before = heapBytes();
  std::string error;
  for (const auto& line : events) {
    const auto e = scanJsonWatchEvent(line, &error);
    auto obj = parseJsonObject(*stripTypeMeta(e->object, "ConfigMap", "v1"), &error);
    json_bytes += obj->bytes.size();
    store.apply(EventType::kAdded, std::move(obj), &error);
  }
  // History and snapshots of the fill are not part of the steady state.
  const auto snap_keep = store.current();
  store.replace(std::vector<ObjectPtr>(), rv);  // release history...
  std::vector<ObjectPtr> all;
  for (auto c = snap_keep->objects.lowerBound(); c.valid(); c.next()) all.push_back(c.object());
  store.replace(all, rv);  // ...and keep exactly the objects
  all.clear();
  const long rss_after = rssBytes(), heap_after = heapBytes();

  // Steady state: MODIFIED events on random objects, parse included.
  const int updates = 200000;
  std::vector<std::string> mods;
  for (int k = 0; k < 2000; ++k) {
    mods.push_back(R"({"type":"MODIFIED","object":)" +
                   configmap(int(rnd() % unsigned(n)), 0, size, rnd) + "}");
  }
  const auto t0 = Clock::now();
  for (int k = 0; k < updates; ++k) {
    std::string line = mods[size_t(k) % mods.size()];
    const std::string rv_text = std::to_string(++rv);
    const auto at = line.find(R"("resourceVersion":"0")");
    line.replace(at, 21, R"("resourceVersion":")" + rv_text + "\"");
    const auto e = scanJsonWatchEvent(line, &error);
    auto obj = parseJsonObject(*stripTypeMeta(e->object, "ConfigMap", "v1"), &error);
    if (!obj || !store.apply(EventType::kModified, std::move(obj), &error)) {
      std::fprintf(stderr, "apply failed: %s\n", error.c_str());
      return 1;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // Snapshot cost: taking one is a pointer copy; holding one costs the
  // nodes later updates copy.
  const auto t1 = Clock::now();
  size_t sink = 0;
  for (int k = 0; k < 1000000; ++k) sink += store.current()->objects.size();
  const double snapshot_ns =
      std::chrono::duration<double, std::nano>(Clock::now() - t1).count() / 1e6;

  std::printf(
      "{\"objects\":%d,\"object_json_bytes\":%.0f,\"events_per_second\":%.0f,\"rss_per_object_"
      "bytes\":%.0f,"
      "\"rss_over_json\":%.2f,\"heap_per_object_bytes\":%.0f,\"heap_over_json\":%.2f,\"snapshot_"
      "ns\":%.1f,"
      "\"check\":%zu}\n",
      n, double(json_bytes) / n, updates / seconds, double(rss_after - rss_before) / n,
      double(rss_after - rss_before) / double(json_bytes), double(heap_after - heap_before) / n,
      double(heap_after - heap_before) / double(json_bytes), snapshot_ns, sink % 2);
  return 0;
}
