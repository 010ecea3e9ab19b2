// Prometheus metrics. Each worker thread records into its own Shard (relaxed
// atomics, a mutex only when a new label set first appears); /metrics sums
// the shards when scraped.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace kcp::proxy {

class Metrics {
 public:
  static constexpr std::array<double, 14> kDurationBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 2.5, 5, 10, 30};

  class Shard {
   public:
    // One finished request. Watches and upgraded connections are counted but,
    // as in kube-apiserver, kept out of the latency histogram.
    void recordRequest(const std::string& verb, const std::string& resource, int code,
                       const std::string& served_from, double seconds, uint64_t bytes_in,
                       uint64_t bytes_out);
    void recordRejection(const std::string& limit);

    std::atomic<int64_t> in_flight{0};
    // Open watch streams, fed by the cache [0] or forwarded to kube-apiserver [1].
    std::array<std::atomic<int64_t>, 2> watches{};
    std::atomic<int64_t> client_connections{0};
    std::atomic<int64_t> upstream_connections{0};
    std::atomic<uint64_t> connections_accepted{0};

   private:
    friend class Metrics;
    struct Histogram {
      std::array<std::atomic<uint64_t>, kDurationBuckets.size()> buckets{};
      std::atomic<uint64_t> count{0};
      std::atomic<uint64_t> sum_micros{0};
    };
    using RequestKey = std::tuple<std::string, std::string, std::string, std::string>;
    mutable std::mutex mu_;  // guards the maps' shape, not the counters
    std::map<RequestKey, std::atomic<uint64_t>> requests_;
    std::map<std::pair<std::string, std::string>, Histogram> durations_;
    std::map<std::string, std::array<std::atomic<uint64_t>, 2>> bytes_;  // in, out by served_from
    std::map<std::string, std::atomic<uint64_t>> rejections_;
  };

  // A new shard for a worker; the shard lives as long as this Metrics.
  Shard& addShard();

  // Where an internal failure happened: an exception caught at a C callback
  // (client HTTP/2 or HTTP/1.1 session, upstream connection, other libevent
  // callbacks), or a failed nghttp2, zlib or libevent call. Each one ended a
  // stream or a connection (see reportInternalError).
  enum class InternalError {
    kHttp2Callback,
    kHttp1Callback,
    kUpstreamCallback,
    kEventCallback,
    kNghttp2,
    kZlib,
    kLibevent,
  };
  static constexpr size_t kInternalErrorKinds = 7;
  // The `where` label of kube_cache_proxy_internal_errors_total.
  static const char* internalErrorLabel(InternalError where) noexcept;
  // Counts one in kube_cache_proxy_internal_errors_total. Process-wide, not
  // per shard: code with no shard (upstream pools, the cache's loop) counts
  // too, and it is rare enough that there is no contention to spread.
  // Thread-safe; never throws (it runs in catch blocks).
  static void recordInternalError(InternalError where) noexcept;

  // Gauges (and counters, named *_total) computed at scrape time (e.g.
  // upstream reachability), on the scraping thread. `labels` is the inside of the braces ("" for
  // none); series of one name share their HELP and TYPE lines.
  void addGauge(std::string name, std::string labels, std::string help,
                std::function<double()> value);

  // The Prometheus text exposition format (version 0.0.4).
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Shard>> shards_;
  struct Gauge {
    std::string name, labels, help;
    std::function<double()> value;
  };
  std::vector<Gauge> gauges_;
  static std::array<std::atomic<uint64_t>, kInternalErrorKinds> internal_errors_;
};

// Counts an internal failure (Metrics::recordInternalError) and logs it as an
// error: `context` says where (e.g. "HTTP/2 onFrameRecv"), `detail` what
// failed; called in a catch block without a detail, the exception's message.
// Never throws: it is meant for the catch blocks of noexcept callbacks.
void reportInternalError(Metrics::InternalError where, std::string_view context,
                         std::string_view detail = {}) noexcept;

}  // namespace kcp::proxy
