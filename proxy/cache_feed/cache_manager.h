// Runs the cache on one event loop (the admin loop): resolves the resources
// named by --cache-resources through upstream discovery, and keeps a
// Reflector and a Store per resource, fed over the proxy's own upstream
// connections (or every listable resource for "*", rediscovered each minute;
// and, with lazy caching, any resource once requested). Workers find synced
// resources in a thread-safe registry; /readyz waits for every configured
// reflector's first sync and /metrics reports what is held.
#pragma once

#include <event2/event.h>
#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/reflector.h"
#include "cache/selectable_fields.h"
#include "cache/store.h"
#include "proxy/auth/proxy_credentials.h"
#include "proxy/cache_feed/reflector_transport.h"
#include "proxy/net/exchange.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

class CacheManager {
 public:
  // `resources`: names like "configmaps", "pods", "deployments.apps",
  // "widgets.example.com". `pool` and `credentials` outlive the manager.
  // `resources` may hold "*": every resource upstream can list and watch.
  // With `lazy`, a resource not configured is cached once requested. With
  // `protobuf`, configured resources get a protobuf store from the start too,
  // and lazily cached ones with their JSON store (otherwise on the first
  // protobuf request).
  // Warm restart: with a folder, every synced resource is saved there every
  // `interval` (by a thread of its own) and by saveState(), and a resource
  // found there at start-up resumes its watch from the saved resourceVersion
  // instead of listing (see Reflector::resume).
  struct Persistence {
    std::string dir;  // empty: off
    std::chrono::milliseconds interval{std::chrono::minutes(1)};
  };
  CacheManager(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials,
               std::vector<std::string> resources, bool lazy, bool protobuf,
               cache::StoreLimits limits, Persistence persistence, Metrics& metrics);
  ~CacheManager();

  // Starts discovery, then one reflector per resource.
  void start();
  // Saves every synced resource now, on the calling thread (shutdown, after
  // the admin loop has stopped). No-op without a persistence folder.
  void saveState();
  // True once every configured resource has completed its first LIST.
  bool synced() const;
  // The largest staleness() of the synced resources that readiness waits
  // for, and which one it is; nullopt when none is synced.
  std::optional<std::pair<std::string, std::chrono::steady_clock::duration>> stalest() const;
  // Thread-safe: a request found `resource` uncached in `encoding`; with lazy
  // caching on (always, for protobuf), the admin loop starts caching it (the
  // request itself is forwarded).
  void requestCaching(std::string_view group, std::string_view resource, cache::Encoding encoding);
  std::string notSyncedReason() const;

  // Thread-safe: the synced cached resource for group/version/resource in
  // each encoding, null where there is none. A protobuf one is also given
  // once it is known to have no protobuf form (its reflector's unsupported()).
  struct Found {
    std::shared_ptr<const CachedResource> json, protobuf;
  };
  Found find(std::string_view group, std::string_view version, std::string_view resource) const;

  // The cache's contents for one resource (name as configured) as a JSON
  // LIST body at the cache's resourceVersion: for tests and debugging.
  std::string debugList(const std::string& resource) const;

 private:
  struct Cached;
  struct SaveJob;
  void add(const std::string& name, bool required, cache::Encoding encoding);
  // Starts the reflector of cached_[index]: from its saved state when there
  // is a usable one; a protobuf one after its JSON twin, which may show it
  // has no protobuf form.
  void startReflector(size_t index);
  std::vector<SaveJob> saveJobs() const;
  static bool save(const std::vector<SaveJob>& jobs);
  void scheduleSave();
  void saverLoop();
  void discover(size_t index);
  // Reflector::onGone: stops serving the resource and frees its objects.
  void onGone(size_t index);
  void recheckGone(size_t index);
  void walkDiscovery(bool required);
  static bool listable(const rapidjson::Value& discovery_resource);
  static void onRequested(evutil_socket_t, short, void* self) noexcept;

  event_base* base_;
  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  cache::StoreLimits limits_;
  Metrics& metrics_;
  bool lazy_;
  bool protobuf_;
  std::vector<std::string> configured_;
  std::unique_ptr<ReflectorUpstream> discovery_;
  std::vector<std::unique_ptr<Cached>> cached_;
  // A resource back in another form gets a new store and reflector; the old
  // ones (empty, stopped) stay for what may still point at them.
  struct Retired {
    std::unique_ptr<ReflectorUpstream> transport;
    std::unique_ptr<cache::Reflector> reflector;
    std::unique_ptr<cache::Store> store;
  };
  std::vector<Retired> retired_;
  mutable std::mutex registry_mu_;
  std::vector<std::shared_ptr<const CachedResource>>
      registry_;  // discovered resources, for workers
  event* requested_ev_;
  std::mutex requested_mu_;
  std::vector<std::pair<std::string, cache::Encoding>> requested_;     // to add, on the admin loop
  std::set<std::pair<std::string, cache::Encoding>> requested_names_;  // ever requested
  std::set<cache::Reflector*> progress_wanted_;  // to ask for a bookmark, on the admin loop
  Persistence persistence_;
  // The saver thread writes what the admin loop hands it; one batch at a time.
  std::mutex save_mu_;
  std::condition_variable save_cv_;
  std::vector<SaveJob> save_pending_;
  bool save_busy_ = false, save_stop_ = false;
  std::atomic<uint64_t> saves_ok_{0}, saves_failed_{0};
  std::thread saver_;
};

}  // namespace kcp::proxy
