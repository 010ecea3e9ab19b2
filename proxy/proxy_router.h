// The main listener's router: which handler answers a request — the cache
// (once the client is known to be allowed), or kube-apiserver (forwarded,
// acting as the client: its own credentials, or the proxy's on its behalf).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/kubeconfig.h"
#include "proxy/auth/authorized_request.h"
#include "proxy/handlers/consistent_read.h"
#include "proxy/handlers/watch_feed.h"
#include "proxy/net/exchange.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"
#include "proxy/request/response_form.h"

namespace kcp::proxy {

class CacheManager;
struct CachedResource;

class ProxyRouter : public Router {
 public:
  // `proxy_ctx` presents the proxy's client certificate (if any);
  // `passthrough_ctx` presents none, for requests carrying their own
  // credentials. Both must outlive the router.
  // `cache` (may be null) answers the LISTs it can answer exactly.
  // How clients of the TLS listener are identified (--auth-mode and friends).
  struct Auth {
    bool delegate = true;        // else trust-local: every client acts as the proxy
    bool anonymous = false;      // --anonymous-auth
    AuthCache* cache = nullptr;  // shared by the workers; required when delegate
  };
  // Consistent reads from the cache (see ConsistentRead).
  struct ConsistentReads {
    std::chrono::milliseconds wait;           // --consistent-read-wait
    std::chrono::milliseconds max_staleness;  // --max-staleness; zero: off
  };
  ProxyRouter(event_base* base, const UpstreamTarget& target, SSL_CTX* proxy_ctx,
              SSL_CTX* passthrough_ctx, ProxyCredentials& credentials,
              std::chrono::milliseconds dial_timeout, std::chrono::milliseconds keepalive,
              Metrics::Shard& metrics, CacheManager* cache, ConsistentReads consistent_reads,
              Auth auth);
  RequestHandlerPtr route(const RequestHead& head, DownstreamStream& stream) override;

 private:
  // A LIST, GET or WATCH from the cache, or null when the cache cannot
  // answer it exactly: picks the form and the store of that encoding...
  RequestHandlerPtr fromCache(const RequestHead& head, const RequestInfo& info,
                              DownstreamStream& stream);
  // ...and answers from it.
  RequestHandlerPtr fromCache(const RequestHead& head, const RequestInfo& info, ResponseForm form,
                              const std::shared_ptr<const CachedResource>& cached,
                              DownstreamStream& stream);
  // A consistent read: `serve` once the cache has reached upstream's current
  // resourceVersion, else forwarded. Null when not worth trying.
  RequestHandlerPtr consistentRead(const std::shared_ptr<const CachedResource>& cached,
                                   std::function<RequestHandlerPtr(uint64_t rv)> serve,
                                   const RequestHead& head, const RequestInfo& info,
                                   DownstreamStream& stream);
  // Forwarded with the client's identity: its own credentials, the proxy's
  // on its behalf (Impersonate-* for certificate users, or for `as`, whom a
  // certificate user was allowed to impersonate), or the proxy's.
  RequestHandlerPtr forward(const RequestHead& head, RequestInfo info, DownstreamStream& stream,
                            const UserInfo* as = nullptr);
  // This worker's wake-up feed for watchers of `store`.
  WatchFeed& feed(cache::Store& store);

  event_base* base_;
  UpstreamTarget target_;
  SSL_CTX* proxy_ctx_;
  SSL_CTX* passthrough_ctx_;
  std::chrono::milliseconds dial_timeout_;
  UpstreamPool as_proxy_;
  UpstreamPool as_client_;
  ProbeRounds probe_rounds_{as_proxy_};  // consistent reads' probes, shared
  ProxyCredentials& credentials_;
  Metrics::Shard& metrics_;
  CacheManager* cache_;
  ConsistentReads consistent_reads_;
  Auth auth_;
  std::map<const cache::Store*, std::unique_ptr<WatchFeed>> feeds_;  // destroyed before the cache
};

}  // namespace kcp::proxy
