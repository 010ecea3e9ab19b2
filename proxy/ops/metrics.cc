#include "proxy/ops/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>

#include "config/log.h"
#include "proxy/ops/cgroup_memory.h"

namespace kcp::proxy {
namespace {

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string formatValue(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

// Process metrics as client_golang's process collector names them.
void processMetrics(std::ostringstream& out) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  header(out, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
  out << "process_cpu_seconds_total " << formatValue(cpu) << '\n';
  long rss_pages = 0, vm_pages = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) statm >> vm_pages >> rss_pages;
  const long page = sysconf(_SC_PAGESIZE);
  header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out << "process_resident_memory_bytes " << rss_pages * page << '\n';
  header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  out << "process_virtual_memory_bytes " << vm_pages * page << '\n';
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(d)) fds += e->d_name[0] != '.';
    closedir(d);
    --fds;  // the directory stream itself
  }
  header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  out << "process_open_fds " << fds << '\n';
  // Read at every scrape: a pod's limit can be resized in place.
  if (const auto limit = ownMemoryLimit()) {
    header(out, "kube_cache_proxy_memory_limit_bytes", "gauge",
           "The memory limit of the proxy's cgroup (its container's limit); absent when none.");
    out << "kube_cache_proxy_memory_limit_bytes " << *limit << '\n';
  }
}

}  // namespace

void Metrics::Shard::recordRequest(const std::string& verb, const std::string& resource, int code,
                                   const std::string& served_from, double seconds,
                                   uint64_t bytes_in, uint64_t bytes_out) {
  std::lock_guard lock(mu_);
  requests_[{verb, resource, std::to_string(code), served_from}].fetch_add(
      1, std::memory_order_relaxed);
  auto& bytes = bytes_[served_from];
  bytes[0].fetch_add(bytes_in, std::memory_order_relaxed);
  bytes[1].fetch_add(bytes_out, std::memory_order_relaxed);
  if (verb == "watch" || verb == "connect") return;
  Histogram& h = durations_[{verb, served_from}];
  for (size_t i = 0; i < kDurationBuckets.size(); ++i) {
    if (seconds <= kDurationBuckets[i]) h.buckets[i].fetch_add(1, std::memory_order_relaxed);
  }
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_micros.fetch_add(uint64_t(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::Shard::recordRejection(const std::string& limit) {
  std::lock_guard lock(mu_);
  rejections_[limit].fetch_add(1, std::memory_order_relaxed);
}

std::array<std::atomic<uint64_t>, Metrics::kInternalErrorKinds> Metrics::internal_errors_{};

const char* Metrics::internalErrorLabel(InternalError where) noexcept {
  switch (where) {
    case InternalError::kHttp2Callback:
      return "http2_callback";
    case InternalError::kHttp1Callback:
      return "http1_callback";
    case InternalError::kUpstreamCallback:
      return "upstream_callback";
    case InternalError::kEventCallback:
      return "event_callback";
    case InternalError::kNghttp2:
      return "nghttp2";
    case InternalError::kZlib:
      return "zlib";
    case InternalError::kLibevent:
      return "libevent";
  }
  return "unknown";
}

void Metrics::recordInternalError(InternalError where) noexcept {
  internal_errors_[size_t(where)].fetch_add(1, std::memory_order_relaxed);
}

void reportInternalError(Metrics::InternalError where, std::string_view context,
                         std::string_view detail) noexcept {
  Metrics::recordInternalError(where);
  try {
    std::string what(detail);
    if (what.empty()) {
      try {
        if (const std::exception_ptr e = std::current_exception()) std::rethrow_exception(e);
        what = "unknown";
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
        what = "an exception not derived from std::exception";
      }
    }
    log::error(
        "internal error",
        {{"where", Metrics::internalErrorLabel(where)}, {"context", context}, {"error", what}});
  } catch (...) {
    // Not even a log line (out of memory): the counter still has it.
  }
}

Metrics::Shard& Metrics::addShard() {
  std::lock_guard lock(mu_);
  shards_.push_back(std::make_unique<Shard>());
  return *shards_.back();
}

void Metrics::addGauge(std::string name, std::string labels, std::string help,
                       std::function<double()> value) {
  std::lock_guard lock(mu_);
  // Keep series of one name together: the exposition format wants them adjacent.
  auto at = gauges_.end();
  for (auto it = gauges_.begin(); it != gauges_.end(); ++it) {
    if (it->name == name) at = it + 1;
  }
  gauges_.insert(at, {std::move(name), std::move(labels), std::move(help), std::move(value)});
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::map<Shard::RequestKey, uint64_t> requests;
  std::map<std::pair<std::string, std::string>,
           std::pair<std::array<uint64_t, kDurationBuckets.size()>, std::pair<uint64_t, uint64_t>>>
      durations;
  std::map<std::string, std::array<uint64_t, 2>> bytes;
  std::map<std::string, uint64_t> rejections;
  int64_t in_flight = 0, client_conns = 0, upstream_conns = 0;
  std::array<int64_t, 2> watches{};
  uint64_t accepted = 0;
  for (const auto& s : shards_) {
    std::lock_guard shard_lock(s->mu_);
    for (const auto& [k, v] : s->requests_) requests[k] += v.load(std::memory_order_relaxed);
    for (const auto& [k, h] : s->durations_) {
      auto& d = durations[k];
      for (size_t i = 0; i < kDurationBuckets.size(); ++i)
        d.first[i] += h.buckets[i].load(std::memory_order_relaxed);
      d.second.first += h.count.load(std::memory_order_relaxed);
      d.second.second += h.sum_micros.load(std::memory_order_relaxed);
    }
    for (const auto& [k, b] : s->bytes_) {
      bytes[k][0] += b[0].load(std::memory_order_relaxed);
      bytes[k][1] += b[1].load(std::memory_order_relaxed);
    }
    for (const auto& [k, v] : s->rejections_) rejections[k] += v.load(std::memory_order_relaxed);
    in_flight += s->in_flight.load(std::memory_order_relaxed);
    for (size_t i = 0; i < watches.size(); ++i)
      watches[i] += s->watches[i].load(std::memory_order_relaxed);
    client_conns += s->client_connections.load(std::memory_order_relaxed);
    upstream_conns += s->upstream_connections.load(std::memory_order_relaxed);
    accepted += s->connections_accepted.load(std::memory_order_relaxed);
  }

  std::ostringstream out;
  header(out, "kube_cache_proxy_requests_total", "counter",
         "Requests finished, by verb, resource, HTTP code and whether served from the cache or "
         "upstream.");
  for (const auto& [k, v] : requests) {
    const auto& [verb, resource, code, from] = k;
    out << "kube_cache_proxy_requests_total{verb=\"" << escapeLabel(verb) << "\",resource=\""
        << escapeLabel(resource) << "\",code=\"" << code << "\",served_from=\"" << from << "\"} "
        << v << '\n';
  }
  header(out, "kube_cache_proxy_request_duration_seconds", "histogram",
         "Request latency from the request head to the end of the response, excluding watches.");
  for (const auto& [k, d] : durations) {
    const std::string labels =
        "verb=\"" + escapeLabel(k.first) + "\",served_from=\"" + k.second + "\"";
    for (size_t i = 0; i < kDurationBuckets.size(); ++i) {
      out << "kube_cache_proxy_request_duration_seconds_bucket{" << labels << ",le=\""
          << formatValue(kDurationBuckets[i]) << "\"} " << d.first[i] << '\n';
    }
    out << "kube_cache_proxy_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} "
        << d.second.first << '\n';
    out << "kube_cache_proxy_request_duration_seconds_sum{" << labels << "} "
        << formatValue(double(d.second.second) / 1e6) << '\n';
    out << "kube_cache_proxy_request_duration_seconds_count{" << labels << "} " << d.second.first
        << '\n';
  }
  header(out, "kube_cache_proxy_request_body_bytes_total", "counter",
         "Request body bytes received from clients.");
  for (const auto& [k, b] : bytes)
    out << "kube_cache_proxy_request_body_bytes_total{served_from=\"" << k << "\"} " << b[0]
        << '\n';
  header(out, "kube_cache_proxy_response_body_bytes_total", "counter",
         "Response body bytes sent to clients.");
  for (const auto& [k, b] : bytes)
    out << "kube_cache_proxy_response_body_bytes_total{served_from=\"" << k << "\"} " << b[1]
        << '\n';
  header(out, "kube_cache_proxy_limit_rejections_total", "counter",
         "Requests or connections refused by a limit.");
  for (const auto& [k, v] : rejections)
    out << "kube_cache_proxy_limit_rejections_total{limit=\"" << k << "\"} " << v << '\n';
  header(out, "kube_cache_proxy_inflight_requests", "gauge",
         "Requests in progress (watches included).");
  out << "kube_cache_proxy_inflight_requests " << in_flight << '\n';
  header(out, "kube_cache_proxy_watches", "gauge",
         "Open watch streams, by whether the cache feeds them or they are forwarded upstream.");
  out << "kube_cache_proxy_watches{served_from=\"cache\"} " << watches[0] << '\n';
  out << "kube_cache_proxy_watches{served_from=\"upstream\"} " << watches[1] << '\n';
  header(out, "kube_cache_proxy_client_connections", "gauge", "Open client connections.");
  out << "kube_cache_proxy_client_connections " << client_conns << '\n';
  header(out, "kube_cache_proxy_client_connections_accepted_total", "counter",
         "Client connections accepted.");
  out << "kube_cache_proxy_client_connections_accepted_total " << accepted << '\n';
  header(out, "kube_cache_proxy_upstream_connections", "gauge",
         "Open HTTP/2 connections to kube-apiserver.");
  out << "kube_cache_proxy_upstream_connections " << upstream_conns << '\n';
  header(out, "kube_cache_proxy_internal_errors_total", "counter",
         "Internal failures that ended a stream or a connection, by where: an exception caught at "
         "a C callback, "
         "or a failed nghttp2, zlib or libevent call.");
  for (size_t i = 0; i < kInternalErrorKinds; ++i) {
    out << "kube_cache_proxy_internal_errors_total{where=\"" << internalErrorLabel(InternalError(i))
        << "\"} " << internal_errors_[i].load(std::memory_order_relaxed) << '\n';
  }
  for (size_t i = 0; i < gauges_.size(); ++i) {
    const Gauge& g = gauges_[i];
    if (i == 0 || gauges_[i - 1].name != g.name) {
      header(out, g.name.c_str(), g.name.ends_with("_total") ? "counter" : "gauge", g.help.c_str());
    }
    out << g.name;
    if (!g.labels.empty()) out << '{' << g.labels << '}';
    out << ' ' << formatValue(g.value()) << '\n';
  }
  processMetrics(out);
  return out.str();
}

}  // namespace kcp::proxy
