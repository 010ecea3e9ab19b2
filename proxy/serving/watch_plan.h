// Whether and how the cache answers a WATCH, decided as kube-apiserver 1.37
// decides it (its watch-list defaulting, resourceVersion semantics, the
// history's reach), without an event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "cache/selector.h"
#include "cache/store.h"
#include "proxy/request/list_options.h"
#include "proxy/request/request_info.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

struct WatchPlan {
  cache::SnapshotPtr initial;       // ADDED for its selected objects first; null: no initial events
  bool initial_events_end = false;  // watch-list: a BOOKMARK after them
  uint64_t from = 0;                // then the events after this resourceVersion
  uint64_t expired =
      0;  // non-zero: too old, answered with an ERROR 410 (the resourceVersion asked)
  bool bookmarks = false;
  std::chrono::milliseconds timeout{0};
  std::string prefix;  // "namespace/" or ""
  cache::ObjectFilter filter;
};

// How a watch is answered from the cache; nullopt: forwarded. A consistent
// start (no resourceVersion) needs upstream's current resourceVersion first:
// `consistent` is then set; the caller learns it and plans again with it as
// `upstream_rv`.
std::optional<WatchPlan> planWatch(const CachedResource& resource, const RequestInfo& info,
                                   const ListOptions& options, uint64_t upstream_rv,
                                   bool* consistent);

}  // namespace kcp::proxy
