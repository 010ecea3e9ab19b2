// A cached resource as request serving sees it: what it is (group, version,
// kind, path, scope, selectable fields), its store and reflector, and the
// counters and freshness its requests read and update. Shared (immutable
// but for the atomics) by every worker; the cache manager publishes it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "cache/reflector.h"
#include "cache/selectable_fields.h"
#include "cache/store.h"

namespace kcp::proxy {

// A cached resource as request routing sees it. The store and reflector
// outlive every request (the manager is destroyed after the workers).
struct CachedResource {
  std::string group, version, resource;
  cache::Encoding encoding = cache::Encoding::kJson;  // of the store's objects
  std::string kind, list_kind, group_version;
  bool namespaced = true;
  std::string path;  // the collection across namespaces, e.g. /api/v1/configmaps
  cache::ResourceFields fields;
  cache::Store* store = nullptr;
  const cache::Reflector* reflector = nullptr;
  // Until when (steady clock) consistent reads are forwarded without trying,
  // after one gave up waiting.
  mutable std::atomic<int64_t> consistent_reads_forwarded_until{0};
  // The newest resourceVersion upstream has reported (consistent-read
  // probes), and when it was first reported (steady clock ticks).
  mutable std::atomic<uint64_t> upstream_resource_version{0};
  mutable std::atomic<int64_t> upstream_resource_version_seen{0};
  // Whether a consistent read is worth trying from the cache: not while it is
  // as quiet as when the last attempt ran out of time.
  bool consistentReadsWorthTrying(std::chrono::steady_clock::time_point now) const {
    return now.time_since_epoch().count() >= consistent_reads_forwarded_until.load();
  }
  // Thread-safe: upstream reported `rv` (raises upstream_resource_version).
  void noteUpstreamResourceVersion(uint64_t rv) const;
  // How long the cache has been behind a resourceVersion upstream reported:
  // zero once it has reached the newest one.
  std::chrono::steady_clock::duration lag(std::chrono::steady_clock::time_point now) const;
  // How long the cache may have been missing upstream's changes: the longer
  // of the reflector's time without an open watch (Reflector::staleSince)
  // and lag(). What --max-staleness bounds.
  std::chrono::steady_clock::duration staleness(std::chrono::steady_clock::time_point now) const;
  // Set when the resource went away upstream (Reflector::onGone): no longer
  // found, and its client watches end.
  mutable std::atomic<bool> gone{false};
  // Thread-safe: asks the reflector for a bookmark soon (see Reflector::requestProgress).
  std::function<void()> request_progress;
  // Watches closed because they fell behind the event history.
  mutable std::atomic<uint64_t> watchers_too_slow{0};
  // Consistent reads: upstream probes sent, and how they were answered.
  mutable std::atomic<uint64_t> consistent_read_probes{0}, consistent_reads_from_cache{0},
      consistent_reads_forwarded{0}, consistent_reads_stale{0};
};

}  // namespace kcp::proxy
