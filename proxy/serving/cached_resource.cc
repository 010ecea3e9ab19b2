#include "proxy/serving/cached_resource.h"

#include <algorithm>

namespace kcp::proxy {

void CachedResource::noteUpstreamResourceVersion(uint64_t rv) const {
  for (uint64_t seen = upstream_resource_version.load(); seen < rv;) {
    if (upstream_resource_version.compare_exchange_weak(seen, rv)) {
      upstream_resource_version_seen.store(
          std::chrono::steady_clock::now().time_since_epoch().count());
      return;
    }
  }
}

std::chrono::steady_clock::duration CachedResource::lag(
    std::chrono::steady_clock::time_point now) const {
  const uint64_t up = upstream_resource_version.load();
  if (store->current()->resource_version >= up) return {};
  const std::chrono::steady_clock::time_point seen{
      std::chrono::steady_clock::duration(upstream_resource_version_seen.load())};
  return now > seen ? now - seen : std::chrono::steady_clock::duration{};
}

std::chrono::steady_clock::duration CachedResource::staleness(
    std::chrono::steady_clock::time_point now) const {
  std::chrono::steady_clock::duration disconnected{};
  if (const auto since = reflector->staleSince(); since && now > *since)
    disconnected = now - *since;
  return std::max(disconnected, lag(now));
}

}  // namespace kcp::proxy
