// The admin listener: the proxy's own /healthz, /livez, /readyz and
// /metrics (kube-apiserver's endpoints of the same names are forwarded on
// the main port). Readiness follows a periodic probe of upstream /readyz.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/cache_feed/cache_manager.h"
#include "proxy/net/exchange.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"
#include "proxy/proxy_router.h"

namespace kcp::proxy {

// Whether kube-apiserver answered its /readyz lately. Thread-safe.
class UpstreamHealth {
 public:
  void set(bool ready, std::string reason);
  bool ready() const { return ready_.load(); }
  std::string reason() const;

 private:
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  std::string reason_ = "upstream not probed yet";
};

class AdminRouter : public Router {
 public:
  AdminRouter(event_base* base, const UpstreamTarget& target, SSL_CTX* proxy_ctx,
              ProxyCredentials& credentials, std::chrono::milliseconds dial_timeout,
              Metrics& metrics, UpstreamHealth& health);
  // The cache whose sync /readyz waits for and /debug/cache/RESOURCE shows
  // (may stay null: no cache configured). Same loop as this router.
  // `debug_dump`: serve /debug/cache/RESOURCE (the cached objects, secrets
  // included): only when the admin listener is loopback. With
  // `max_staleness`, /readyz stays ready while upstream is not as long as
  // the cache is at most that stale, and fails when it is staler.
  void setCache(const CacheManager* cache, bool debug_dump,
                std::chrono::milliseconds max_staleness) {
    cache_ = cache;
    debug_dump_ = debug_dump;
    max_staleness_ = max_staleness;
  }
  ~AdminRouter() override;
  RequestHandlerPtr route(const RequestHead& head, DownstreamStream& stream) override;
  // Set once shutdown begins: /readyz fails so load balancers move away.
  void setShuttingDown() { shutting_down_ = true; }

 private:
  class Probe;
  RequestHandlerPtr readyz(DownstreamStream& stream) const;
  Metrics& metrics_;
  UpstreamHealth& health_;
  UpstreamPool pool_;
  std::unique_ptr<Probe> probe_;
  const CacheManager* cache_ = nullptr;
  bool debug_dump_ = false;
  std::chrono::milliseconds max_staleness_{0};
  bool shutting_down_ = false;
};

}  // namespace kcp::proxy
