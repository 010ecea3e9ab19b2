// The main listener's router: today every request is forwarded upstream
// (the cache plugs in here). It also decides who a forwarded request acts as.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/kubeconfig.h"
#include "proxy/auth.h"
#include "proxy/exchange.h"
#include "proxy/request_info.h"
#include "proxy/response_form.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "proxy/watch_feed.h"

namespace kcp::proxy {

// The proxy's own bearer token (static, or a token file re-read when it
// changes, as bound service-account tokens rotate). Thread-safe.
class ProxyCredentials {
 public:
  // The token file is checked for changes at most every `recheck`.
  explicit ProxyCredentials(const config::UpstreamConfig& cfg,
                            std::chrono::milliseconds recheck = std::chrono::seconds(10));
  // The current token, or "" when the proxy authenticates by client certificate.
  std::string bearerToken();
  // Adds the proxy's token to a request it sends upstream, if it has one.
  void authorize(RequestHead& head);

 private:
  std::mutex mu_;
  std::string token_;
  std::string token_file_;
  std::chrono::milliseconds recheck_;
  std::chrono::steady_clock::time_point next_check_{};
  int64_t file_mtime_ns_ = -1;
};

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
    bool delegate = true;         // else trust-local: every client acts as the proxy
    bool anonymous = false;       // --anonymous-auth
    AuthCache* cache = nullptr;   // shared by the workers; required when delegate
  };
  // Consistent reads from the cache (see ConsistentRead).
  struct ConsistentReads {
    std::chrono::milliseconds wait;           // --consistent-read-wait
    std::chrono::milliseconds max_staleness;  // --max-staleness; zero: off
  };
  ProxyRouter(event_base* base, const UpstreamTarget& target, SSL_CTX* proxy_ctx, SSL_CTX* passthrough_ctx,
              ProxyCredentials& credentials, std::chrono::milliseconds dial_timeout,
              std::chrono::milliseconds keepalive, Metrics::Shard& metrics, CacheManager* cache,
              ConsistentReads consistent_reads, Auth auth);
  RequestHandlerPtr route(const RequestHead& head, DownstreamStream& stream) override;

 private:
  // A LIST, GET or WATCH from the cache, or null when the cache cannot
  // answer it exactly: picks the form and the store of that encoding...
  RequestHandlerPtr fromCache(const RequestHead& head, const RequestInfo& info, DownstreamStream& stream);
  // ...and answers from it.
  RequestHandlerPtr fromCache(const RequestHead& head, const RequestInfo& info, ResponseForm form,
                              const std::shared_ptr<const CachedResource>& cached, DownstreamStream& stream);
  // A consistent read: `serve` once the cache has reached upstream's current
  // resourceVersion, else forwarded. Null when not worth trying.
  RequestHandlerPtr consistentRead(const std::shared_ptr<const CachedResource>& cached,
                                   std::function<RequestHandlerPtr(uint64_t rv)> serve,
                                   const RequestHead& head, const RequestInfo& info, DownstreamStream& stream);
  // Forwarded with the client's identity: its own credentials, the proxy's
  // on its behalf (Impersonate-* for certificate users, or for `as`, whom a
  // certificate user was allowed to impersonate), or the proxy's.
  RequestHandlerPtr forward(const RequestHead& head, RequestInfo info, DownstreamStream& stream,
                            const UserInfo* as = nullptr);
  Identity identify(const RequestHead& head, const PeerInfo& peer) const;
  // This worker's wake-up feed for watchers of `store`.
  WatchFeed& feed(cache::Store& store);

  event_base* base_;
  UpstreamTarget target_;
  SSL_CTX* proxy_ctx_;
  SSL_CTX* passthrough_ctx_;
  std::chrono::milliseconds dial_timeout_;
  UpstreamPool as_proxy_;
  UpstreamPool as_client_;
  ProxyCredentials& credentials_;
  Metrics::Shard& metrics_;
  CacheManager* cache_;
  ConsistentReads consistent_reads_;
  Auth auth_;
  std::map<const cache::Store*, std::unique_ptr<WatchFeed>> feeds_;  // destroyed before the cache
};

}  // namespace kcp::proxy
