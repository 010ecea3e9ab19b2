#include "proxy/proxy_router.h"

#include "cache/protobuf.h"
#include "config/log.h"
#include "proxy/cache_feed/cache_manager.h"
#include "proxy/handlers/cached_get.h"
#include "proxy/handlers/cached_list.h"
#include "proxy/handlers/cached_watch.h"
#include "proxy/handlers/consistent_read.h"
#include "proxy/handlers/forwarder.h"
#include "proxy/handlers/upgrade_tunnel.h"
#include "proxy/net/static_response.h"
#include "proxy/request/list_options.h"
#include "proxy/request/request_info.h"
#include "proxy/request/response_form.h"
#include "proxy/serving/get_plan.h"
#include "proxy/serving/list_plan.h"
#include "proxy/serving/watch_plan.h"

namespace kcp::proxy {

ProxyRouter::ProxyRouter(event_base* base, const UpstreamTarget& target, SSL_CTX* proxy_ctx,
                         SSL_CTX* passthrough_ctx, ProxyCredentials& credentials,
                         std::chrono::milliseconds dial_timeout,
                         std::chrono::milliseconds keepalive, Metrics::Shard& metrics,
                         CacheManager* cache, ConsistentReads consistent_reads, Auth auth)
    : base_(base),
      target_(target),
      proxy_ctx_(proxy_ctx),
      passthrough_ctx_(passthrough_ctx),
      dial_timeout_(dial_timeout),
      as_proxy_(base, target, proxy_ctx, dial_timeout, keepalive, "proxy-identity",
                &metrics.upstream_connections),
      as_client_(base, target, passthrough_ctx, dial_timeout, keepalive, "client-credentials",
                 &metrics.upstream_connections),
      credentials_(credentials),
      metrics_(metrics),
      cache_(cache),
      consistent_reads_(consistent_reads),
      auth_(auth) {}

namespace {

bool prefersProtobuf(const RequestHead& head) {
  const std::string* accept = head.header("accept");
  return accept != nullptr && accept->starts_with(cache::protobuf::kContentType);
}

}  // namespace

RequestHandlerPtr ProxyRouter::route(const RequestHead& head, DownstreamStream& stream) {
  RequestInfo info = parseRequestInfo(head.method, head.path);
  Identity who = identify(head, stream.peer(), {auth_.delegate, auth_.anonymous});
  if (who.kind == Identity::Kind::kUnauthenticated) {
    return StaticResponse::sendStatus(stream, unauthorizedStatus(), prefersProtobuf(head));
  }
  const ImpersonationHeaders impersonation = readImpersonationHeaders(head.headers);
  // A list or watch whose query the cache cannot read is left to
  // kube-apiserver whole (its RequestInfo, which authorization sees, reads
  // such a query differently, e.g. without the metadata.name selector's name).
  const auto q = head.path.find('?');
  const bool cacheable = cache_ != nullptr && info.is_resource_request &&
                         (info.verb == "list" || info.verb == "get" || info.verb == "watch") &&
                         head.method == "GET" && info.subresource.empty() &&
                         (info.verb == "get" ||
                          parseListOptions(q == std::string::npos ? "" : head.path.substr(q + 1)));
  if (cacheable && who.kind == Identity::Kind::kProxy && !impersonation.present) {
    // The proxy may read what it caches, and that is all such a request could do upstream.
    info.user = "kube-cache-proxy (its own identity)";
    if (auto handler = fromCache(head, info, stream)) return handler;
    return forward(head, std::move(info), stream);
  }
  // Other users' reads are served from the JSON store's resources only.
  const bool cached =
      cacheable && cache_->find(info.api_group, info.api_version, info.resource).json != nullptr;
  if (cacheable && !cached)
    cache_->requestCaching(info.api_group, info.resource, cache::Encoding::kJson);
  const bool certificate_user =
      who.kind == Identity::Kind::kUser && who.user.name != "system:anonymous";
  if (certificate_user && impersonation.present) {
    // kube-apiserver sees a certificate user's requests as the proxy's, so
    // only the proxy can check whom this user may impersonate: every request.
    if (impersonation.invalid)
      return StaticResponse::sendStatus(stream, *impersonation.invalid, prefersProtobuf(head));
    AuthorizedRequest::Checks checks{std::move(who), impersonation.wanted, true, cached};
    return std::make_unique<AuthorizedRequest>(
        as_proxy_, credentials_, *auth_.cache, std::move(checks), info, prefersProtobuf(head),
        stream,
        [this, head, info, cached, &stream](bool allowed, const UserInfo& as) -> RequestHandlerPtr {
          RequestInfo as_user = info;
          as_user.user = as.name;
          if (allowed && cached) {
            if (auto handler = fromCache(head, as_user, stream)) return handler;
          }
          return forward(head, as_user, stream, &as);
        });
  }
  if (!cached) return forward(head, std::move(info), stream);
  // Malformed impersonation, and credentials the proxy does not check
  // (anonymous impersonating too): kube-apiserver answers.
  if (impersonation.invalid || who.kind == Identity::Kind::kOwnCredentials ||
      (impersonation.present && who.kind == Identity::Kind::kUser)) {
    return forward(head, std::move(info), stream);
  }
  // Served from the cache only once kube-apiserver says this user (or the
  // user it impersonates) may; what the proxy cannot decide goes upstream as sent.
  AuthorizedRequest::Checks checks{std::move(who), std::nullopt, false, true};
  if (impersonation.present) checks.impersonate = impersonation.wanted;
  return std::make_unique<AuthorizedRequest>(
      as_proxy_, credentials_, *auth_.cache, std::move(checks), info, prefersProtobuf(head), stream,
      [this, head, info, &stream](bool allowed, const UserInfo& as) -> RequestHandlerPtr {
        RequestInfo as_user = info;
        if (allowed) {
          as_user.user = as.name;
          if (auto handler = fromCache(head, as_user, stream)) return handler;
        }
        return forward(head, as_user, stream);
      });
}

RequestHandlerPtr ProxyRouter::fromCache(const RequestHead& head, const RequestInfo& info,
                                         DownstreamStream& stream) {
  // Each encoding has its own store; a resource found to have no protobuf
  // form (custom resources: their JSON store lists with sorted keys) is
  // answered in JSON, as kube-apiserver does, but for metadata only, which
  // kube-apiserver writes typed, in protobuf too (made from the JSON store).
  const auto found = cache_->find(info.api_group, info.api_version, info.resource);
  const bool custom = found.json && found.json->reflector->sortedListKeys();
  const auto form = cacheResponseForm(
      head, info.verb, !custom && (!found.protobuf || !found.protobuf->reflector->unsupported()));
  if (!form) return nullptr;
  const bool from_json =
      form->encoding == cache::Encoding::kJson || (custom && form->metadata_only);
  const auto& cached = from_json ? found.json : found.protobuf;
  if (!cached) {
    cache_->requestCaching(info.api_group, info.resource,
                           from_json ? cache::Encoding::kJson : cache::Encoding::kProtobuf);
    return nullptr;
  }
  if (!cached->namespaced && !info.namespace_.empty()) return nullptr;
  return fromCache(head, info, *form, cached, stream);
}

RequestHandlerPtr ProxyRouter::fromCache(const RequestHead& head, const RequestInfo& info,
                                         ResponseForm form,
                                         const std::shared_ptr<const CachedResource>& cached,
                                         DownstreamStream& stream) {
  const bool protobuf = form.encoding == cache::Encoding::kProtobuf;
  const auto q = head.path.find('?');
  const std::string_view query =
      q == std::string::npos ? "" : std::string_view(head.path).substr(q + 1);
  if (info.verb == "get") {
    if (cached->namespaced == info.namespace_.empty()) return nullptr;
    bool consistent;
    const auto min_rv = getMinResourceVersion(query, &consistent);
    auto serve = [this, cached, head, info, form, protobuf,
                  &stream](uint64_t rv) -> RequestHandlerPtr {
      auto snapshot = cached->store->current();
      if (snapshot->resource_version < rv) return nullptr;
      // kube-apiserver writes a metadata-only GET's NotFound pretty-printed,
      // and a protobuf one in protobuf: those are left to it.
      if ((form.metadata_only || protobuf) &&
          !snapshot->objects.find(cache::objectKey(info.namespace_, info.name))) {
        return nullptr;
      }
      return std::make_unique<CachedGet>(*cached, snapshot, form, head, info, stream, metrics_);
    };
    if (min_rv) return serve(*min_rv);
    return consistent ? consistentRead(cached, std::move(serve), head, info, stream) : nullptr;
  }
  const auto options = parseListOptions(query);
  if (!options) return nullptr;
  if (info.verb == "watch") {
    if (!options->watch) return nullptr;  // the deprecated /watch/ paths
    bool consistent;
    // Protobuf watches: bookmarks are made from kube-apiserver's own (the
    // reflector keeps one), and a 410 ERROR event is left to it.
    const auto servable = [protobuf, cached](const WatchPlan& plan) {
      // (A custom resource's metadata-only bookmarks need no template.)
      return !protobuf ||
             (plan.expired == 0 && (!plan.bookmarks || cached->reflector->bookmarkTemplate() ||
                                    cached->encoding == cache::Encoding::kJson));
    };
    auto plan = planWatch(*cached, info, *options, 0, &consistent);
    if (!plan || !servable(*plan)) return nullptr;
    auto serve = [this, cached, head, info, form, servable, options = *options,
                  &stream](uint64_t rv) -> RequestHandlerPtr {
      bool ignored;
      auto plan = planWatch(*cached, info, options, rv, &ignored);
      if (!plan || !servable(*plan)) return nullptr;
      return std::make_unique<CachedWatch>(cached, std::move(*plan), form, feed(*cached->store),
                                           base_, head, info, stream, metrics_);
    };
    return consistent ? consistentRead(cached, std::move(serve), head, info, stream) : serve(0);
  }
  if (!isConsistentList(*options)) {
    auto plan = planList(*cached, info, *options);
    return plan ? std::make_unique<CachedList>(*cached, std::move(*plan), form, head, info, stream,
                                               metrics_)
                : nullptr;
  }
  auto consistent =
      consistentListOptions(*cached, info, *options, std::chrono::steady_clock::now());
  if (!consistent) return nullptr;
  auto serve = [this, cached, head, info, form, at_least = std::move(*consistent),
                &stream](uint64_t rv) mutable -> RequestHandlerPtr {
    at_least.resource_version = std::to_string(rv);
    auto plan = planList(*cached, info, at_least);
    return plan ? std::make_unique<CachedList>(*cached, std::move(*plan), form, head, info, stream,
                                               metrics_)
                : nullptr;
  };
  return consistentRead(cached, std::move(serve), head, info, stream);
}

RequestHandlerPtr ProxyRouter::consistentRead(const std::shared_ptr<const CachedResource>& cached,
                                              std::function<RequestHandlerPtr(uint64_t rv)> serve,
                                              const RequestHead& head, const RequestInfo& info,
                                              DownstreamStream& stream) {
  if (!cached->consistentReadsWorthTrying(std::chrono::steady_clock::now())) return nullptr;
  RequestHead probe;
  probe.method = "GET";
  probe.path = cached->path + "?limit=1";
  probe.end_stream = true;
  probe.headers = {{"accept", "application/json"},
                   {"user-agent", "kube-cache-proxy/consistent-read"}};
  credentials_.authorize(probe);
  auto fwd = [this, head, info, &stream] { return forward(head, info, stream); };
  return std::make_unique<ConsistentRead>(base_, probe_rounds_, std::move(probe), cached,
                                          consistent_reads_.wait, consistent_reads_.max_staleness,
                                          std::move(serve), std::move(fwd));
}

WatchFeed& ProxyRouter::feed(cache::Store& store) {
  auto& f = feeds_[&store];
  if (!f) f = std::make_unique<WatchFeed>(base_, store);
  return *f;
}

RequestHandlerPtr ProxyRouter::forward(const RequestHead& head, RequestInfo info,
                                       DownstreamStream& stream, const UserInfo* as) {
  RequestHead up = head;
  std::erase_if(up.headers, [](const Header& h) { return isHopByHop(h.name); });
  const Identity who = identify(head, stream.peer(), {auth_.delegate, auth_.anonymous});
  // Credentials of the client's own go through on a connection without the
  // proxy's client certificate (kube-apiserver would otherwise authenticate
  // the certificate first and ignore the token); so does an anonymous
  // request, Impersonate-* headers and all: kube-apiserver checks them.
  // Otherwise the request goes with the proxy's credentials: as the proxy
  // (trust-local, the cleartext listener: the client *is* the proxy, so its
  // Impersonate-* headers go up as sent), or impersonating a certificate's
  // user, or the user that certificate user was allowed to impersonate.
  const bool as_client =
      as == nullptr &&
      (who.kind == Identity::Kind::kToken || who.kind == Identity::Kind::kOwnCredentials ||
       (who.kind == Identity::Kind::kUser && who.user.name == "system:anonymous"));
  UpstreamPool* pool = &as_client_;
  if (!as_client) {
    pool = &as_proxy_;
    std::erase_if(up.headers, [&](const Header& h) {
      return h.name == "authorization" ||
             (who.kind != Identity::Kind::kProxy && isImpersonationHeader(h.name));
    });
    credentials_.authorize(up);
    if (as != nullptr || who.kind == Identity::Kind::kUser) {
      for (auto& h : impersonationHeadersFor(as != nullptr ? *as : who.user))
        up.headers.push_back(std::move(h));
    }
  }
  if (!up.upgrade.empty()) {
    return std::make_unique<UpgradeTunnel>(base_, target_,
                                           as_client ? passthrough_ctx_ : proxy_ctx_, dial_timeout_,
                                           up, info, stream, metrics_);
  }
  return std::make_unique<Forwarder>(std::move(up), std::move(info), stream, *pool, metrics_);
}

}  // namespace kcp::proxy
