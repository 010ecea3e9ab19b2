#include "proxy/cache_manager.h"

#include <rapidjson/document.h>

#include <list>

#include "cache/json_scan.h"
#include "cache/selectable_fields.h"
#include "config/log.h"

namespace kcp::proxy {
namespace {

// etcd refuses values over 1.5 MiB by default; kube-apiserver's own limit on a request is 3 MiB.
constexpr size_t kMaxWatchFrame = 64 << 20;

}  // namespace

// ReflectorTransport over the upstream pool. Completion callbacks run on a
// later loop turn, so a reflector may start its next request from them.
class CacheManager::Transport : public cache::ReflectorTransport {
 public:
  Transport(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials,
            cache::Encoding encoding = cache::Encoding::kJson)
      : base_(base), pool_(pool), credentials_(credentials), encoding_(encoding) {}
  ~Transport() override {
    exchanges_.clear();
    timers_.clear();
  }

  void get(const std::string& path, std::function<void(int, std::string)> done) override {
    auto ex = std::make_unique<Exchange>(*this, nullptr, [done = std::move(done)](int status, std::string body) {
      done(status, std::move(body));
    });
    start(std::move(ex), path);
  }

  void watch(const std::string& path, std::function<void(std::string_view)> on_event,
             std::function<void(int, std::string)> on_end) override {
    cancelWatch();
    auto ex = std::make_unique<Exchange>(*this, std::move(on_event), std::move(on_end));
    watch_ = ex.get();
    start(std::move(ex), path);
  }

  void cancelWatch() override {
    if (watch_ != nullptr) {
      watch_->cancel();
      watch_ = nullptr;
    }
  }

  void after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    auto timer = std::make_unique<Timer>();
    Timer* raw = timer.get();
    raw->transport = this;
    raw->fn = std::move(fn);
    raw->ev = evtimer_new(base_, onTimer, raw);
    timers_.push_back(std::move(timer));
    const timeval tv = timevalOf(delay);
    evtimer_add(raw->ev, &tv);
  }

 private:
  // One request: a whole body (get) or a stream of events (watch): JSON
  // lines, or protobuf frames after a 4-byte big-endian length.
  class Exchange : public UpstreamStreamHandler {
   public:
    Exchange(Transport& t, std::function<void(std::string_view)> on_line, std::function<void(int, std::string)> on_end)
        : t_(t), on_line_(std::move(on_line)), on_end_(std::move(on_end)),
          length_prefixed_(t.encoding_ == cache::Encoding::kProtobuf) {}
    ~Exchange() override {
      if (stream_ != nullptr) stream_->cancel();
    }
    void begin(UpstreamStream* s) { stream_ = s; }
    void cancel() {
      cancelled_ = true;
      if (stream_ != nullptr) stream_->cancel();
      stream_ = nullptr;
      t_.finish(this, nullptr);
    }
    void onUpstreamResponse(const ResponseHead& head, bool) override { status_ = head.status; }
    void onUpstreamData(const uint8_t* data, size_t len) override {
      body_.append(reinterpret_cast<const char*>(data), len);
      stream_->consume(len);
      if (on_line_ && status_ == 200) {
        size_t start = 0;
        while (!cancelled_) {
          std::string_view event;
          if (length_prefixed_) {
            if (body_.size() - start < 4) break;
            const auto* p = reinterpret_cast<const uint8_t*>(body_.data() + start);
            const size_t n = size_t(p[0]) << 24 | size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3];
            if (n > kMaxWatchFrame) {  // not a frame kube-apiserver would write: end the watch
              stream_->cancel();
              stream_ = nullptr;
              done(0, "protobuf watch frame of " + std::to_string(n) + " bytes");
              return;
            }
            if (body_.size() - start - 4 < n) break;
            event = std::string_view(body_.data() + start + 4, n);
            start += 4 + n;
          } else {
            const size_t nl = body_.find('\n', start);
            if (nl == std::string::npos) break;
            event = std::string_view(body_.data() + start, nl - start);
            start = nl + 1;
          }
          if (!event.empty()) on_line_(event);  // may cancel this exchange
        }
        if (!cancelled_) body_.erase(0, start);
      }
    }
    void onUpstreamComplete() override {
      stream_ = nullptr;
      done(status_, std::move(body_));
    }
    void onUpstreamError(const std::string& reason) override {
      stream_ = nullptr;
      done(0, reason);
    }
    size_t requestBodyReady(bool* eof) override {
      *eof = true;
      return 0;
    }
    void pullRequestBody(evbuffer*, size_t) override {}

   private:
    void done(int status, std::string body) {
      if (cancelled_) return;
      auto cb = std::move(on_end_);
      t_.finish(this, [cb = std::move(cb), status, body = std::move(body)]() mutable { cb(status, std::move(body)); });
    }
    Transport& t_;
    std::function<void(std::string_view)> on_line_;
    std::function<void(int, std::string)> on_end_;
    UpstreamStream* stream_ = nullptr;
    int status_ = 0;
    std::string body_;
    bool cancelled_ = false;
    bool length_prefixed_;
  };

  void start(std::unique_ptr<Exchange> ex, const std::string& path) {
    RequestHead head;
    head.method = "GET";
    head.path = path;
    head.end_stream = true;
    // Protobuf with JSON as the fallback: custom resources answer in JSON,
    // which tells the reflector they have no protobuf form.
    head.headers = {{"accept", encoding_ == cache::Encoding::kProtobuf
                                   ? "application/vnd.kubernetes.protobuf, application/json"
                                   : "application/json"},
                    {"user-agent", "kube-cache-proxy/reflector"}};
    credentials_.authorize(head);
    Exchange* raw = ex.get();
    exchanges_.push_back(std::move(ex));
    raw->begin(pool_.submit(std::move(head), raw));
  }

  // Ends an exchange: deleted on a later turn (it may be on the stack), and
  // its completion, if any, runs then.
  void finish(Exchange* ex, std::function<void()> then) {
    if (watch_ == ex) watch_ = nullptr;
    for (auto it = exchanges_.begin(); it != exchanges_.end(); ++it) {
      if (it->get() == ex) {
        std::shared_ptr<Exchange> dying(std::move(*it));
        exchanges_.erase(it);
        after(std::chrono::milliseconds(0), [dying, then = std::move(then)] {
          if (then) then();
        });
        return;
      }
    }
  }

  event_base* base_;
  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  cache::Encoding encoding_;
  std::list<std::unique_ptr<Exchange>> exchanges_;
  Exchange* watch_ = nullptr;
  struct Timer {
    Transport* transport;
    std::function<void()> fn;
    event* ev = nullptr;
    ~Timer() {
      if (ev != nullptr) event_free(ev);
    }
  };
  static void onTimer(evutil_socket_t, short, void* p) {
    auto* timer = static_cast<Timer*>(p);
    std::function<void()> fn = std::move(timer->fn);
    timer->transport->timers_.remove_if([timer](const std::unique_ptr<Timer>& t) { return t.get() == timer; });
    fn();  // may schedule more timers or destroy exchanges
  }
  std::list<std::unique_ptr<Timer>> timers_;
};

struct CacheManager::Cached {
  std::string name;  // as configured
  cache::Encoding encoding = cache::Encoding::kJson;
  cache::ResourceInfo info;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<cache::Reflector> reflector;
  std::string discovery_error = "not discovered yet";
  bool required = true;  // configured: readiness waits for it (not: cached on a first request)
  std::mutex served_mu;  // /metrics reads `served` on the admin loop's scrape
  std::shared_ptr<const CachedResource> served;
};

CacheManager::CacheManager(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials,
                           std::vector<std::string> resources, bool lazy, cache::StoreLimits limits, Metrics& metrics)
    : base_(base), pool_(pool), credentials_(credentials), limits_(limits), metrics_(metrics), lazy_(lazy),
      configured_(std::move(resources)),
      discovery_(std::make_unique<Transport>(base, pool, credentials)),
      requested_ev_(event_new(base, -1, 0, onRequested, this)) {}

CacheManager::~CacheManager() { event_free(requested_ev_); }

void CacheManager::start() {
  for (const auto& name : configured_) {
    if (name == "*") {
      walkDiscovery(true);
    } else {
      add(name, true, cache::Encoding::kJson);
    }
  }
}

void CacheManager::add(const std::string& name, bool required, cache::Encoding encoding) {
  for (const auto& c : cached_) {
    if (c->name == name && c->encoding == encoding) return;
  }
  auto owned = std::make_unique<Cached>();
  owned->name = name;
  owned->encoding = encoding;
  owned->required = required;
  owned->store = std::make_unique<cache::Store>(limits_);
  cached_.push_back(std::move(owned));
  const auto& c = cached_.back();
  Cached* cp = c.get();
  const std::string labels =
      "resource=\"" + cp->name + "\",encoding=\"" + cache::encodingName(encoding) + "\"";
  metrics_.addGauge("kube_cache_proxy_cache_objects", labels, "Objects held in the cache.",
                    [cp] { return double(cp->store->stats().objects); });
  metrics_.addGauge("kube_cache_proxy_cache_bytes", labels,
                    "Bytes of object encodings held in the cache.",
                    [cp] { return double(cp->store->stats().object_bytes); });
  metrics_.addGauge("kube_cache_proxy_cache_resource_version", labels,
                    "The resourceVersion the cache is at.",
                    [cp] { return double(cp->store->stats().resource_version); });
  metrics_.addGauge("kube_cache_proxy_cache_snapshots", labels, "Snapshots held for continue tokens.",
                    [cp] { return double(cp->store->stats().snapshots); });
  metrics_.addGauge("kube_cache_proxy_cache_history_events", labels, "Events held for watch resume.",
                    [cp] { return double(cp->store->stats().history_events); });
  metrics_.addGauge("kube_cache_proxy_cache_relists_total", labels, "Relists since start (410 or errors).",
                    [cp] { return cp->reflector ? double(cp->reflector->relists()) : 0.0; });
  metrics_.addGauge("kube_cache_proxy_cache_reconnects_total", labels, "Watch reconnects since start.",
                    [cp] { return cp->reflector ? double(cp->reflector->reconnects()) : 0.0; });
  const auto counter = [cp](std::atomic<uint64_t> CachedResource::*member) {
    return [cp, member] {
      std::lock_guard lock(cp->served_mu);
      return cp->served ? double(((*cp->served).*member).load()) : 0.0;
    };
  };
  metrics_.addGauge("kube_cache_proxy_watchers_closed_behind_total", labels,
                    "Client watches closed because they fell behind the event history (too slow, or the cache "
                    "relisted); their clients resume or relist.",
                    counter(&CachedResource::watchers_too_slow));
  metrics_.addGauge("kube_cache_proxy_consistent_read_probes_total", labels,
                    "One-item LISTs sent upstream to learn its current resourceVersion for a consistent read.",
                    counter(&CachedResource::consistent_read_probes));
  metrics_.addGauge("kube_cache_proxy_consistent_reads_total", labels + ",served_from=\"cache\"",
                    "Consistent reads (LIST without resourceVersion) tried on the cache, by how they were answered.",
                    counter(&CachedResource::consistent_reads_from_cache));
  metrics_.addGauge("kube_cache_proxy_consistent_reads_total", labels + ",served_from=\"upstream\"", "",
                    counter(&CachedResource::consistent_reads_forwarded));
  metrics_.addGauge("kube_cache_proxy_cache_last_update_age_seconds", labels,
                    "Seconds since the cache last heard from upstream for this resource (event, bookmark or relist); "
                    "kube-apiserver sends a bookmark about every minute.",
                    [cp] {
                      return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                           cp->store->stats().last_update).count();
                    });
  metrics_.addGauge("kube_cache_proxy_cache_lag_revisions", labels,
                    "How far the cache is behind the newest resourceVersion upstream reported (by a consistent "
                    "read's probe), in etcd revisions.",
                    [cp] {
                      std::lock_guard lock(cp->served_mu);
                      if (!cp->served) return 0.0;
                      const uint64_t up = cp->served->upstream_resource_version.load();
                      const uint64_t at = cp->store->stats().resource_version;
                      return up > at ? double(up - at) : 0.0;
                    });
  metrics_.addGauge("kube_cache_proxy_cache_synced", labels, "1 once the first LIST completed.",
                    [cp] { return cp->reflector && cp->reflector->synced() ? 1.0 : 0.0; });
  discover(cached_.size() - 1);
}

void CacheManager::requestCaching(std::string_view group, std::string_view resource, cache::Encoding encoding) {
  // Protobuf forms are always cached on request: most clients never ask.
  if (!lazy_ && encoding == cache::Encoding::kJson) return;
  std::string name(resource);
  if (!group.empty()) name += "." + std::string(group);
  {
    std::lock_guard lock(requested_mu_);
    if (!requested_names_.insert({name, encoding}).second) return;
    requested_.push_back({std::move(name), encoding});
  }
  event_active(requested_ev_, EV_READ, 0);  // thread-safe: the admin loop adds it
}

void CacheManager::onRequested(evutil_socket_t, short, void* self) {
  auto* m = static_cast<CacheManager*>(self);
  std::vector<std::pair<std::string, cache::Encoding>> names;
  std::set<cache::Reflector*> progress;
  {
    std::lock_guard lock(m->requested_mu_);
    names.swap(m->requested_);
    progress.swap(m->progress_wanted_);
  }
  for (cache::Reflector* r : progress) r->requestProgress();
  for (const auto& [name, encoding] : names) {
    log::info("caching on first request",
              {{"resource", name}, {"encoding", cache::encodingName(encoding)}});
    m->add(name, false, encoding);
  }
}

void CacheManager::walkDiscovery(bool required) {
  // Every resource that supports list and watch, in every group's preferred
  // version; walked again every minute so custom resources defined later are
  // picked up.
  const auto add_listable = [this, required](const std::string& group, const std::string& body) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resources") || !doc["resources"].IsArray()) return;
    for (const auto& r : doc["resources"].GetArray()) {
      if (!r.IsObject() || !r.HasMember("name") || !r["name"].IsString() || !listable(r)) continue;
      const std::string name = r["name"].GetString();
      if (name.find('/') != std::string::npos) continue;  // a subresource
      add(group.empty() ? name : name + "." + group, required, cache::Encoding::kJson);
    }
  };
  discovery_->get("/api/v1", [add_listable](int status, std::string body) {
    if (status == 200) add_listable("", body);
  });
  discovery_->get("/apis", [this, add_listable](int status, std::string body) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (status != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("groups") || !doc["groups"].IsArray()) {
      return;
    }
    for (const auto& g : doc["groups"].GetArray()) {
      if (!g.IsObject() || !g.HasMember("name") || !g["name"].IsString() || !g.HasMember("preferredVersion") ||
          !g["preferredVersion"].IsObject() || !g["preferredVersion"].HasMember("groupVersion") ||
          !g["preferredVersion"]["groupVersion"].IsString()) {
        continue;
      }
      const std::string group = g["name"].GetString();
      discovery_->get(std::string("/apis/") + g["preferredVersion"]["groupVersion"].GetString(),
                      [add_listable, group](int status, std::string body) {
                        if (status == 200) add_listable(group, body);
                      });
    }
  });
  discovery_->after(std::chrono::minutes(1), [this] { walkDiscovery(false); });
}

bool CacheManager::listable(const rapidjson::Value& resource) {
  bool list = false, watch = false;
  if (resource.HasMember("verbs") && resource["verbs"].IsArray()) {
    for (const auto& v : resource["verbs"].GetArray()) {
      if (!v.IsString()) continue;
      list = list || std::string_view(v.GetString()) == "list";
      watch = watch || std::string_view(v.GetString()) == "watch";
    }
  }
  return list && watch;
}

void CacheManager::discover(size_t index) {
  Cached& c = *cached_[index];
  // "configmaps" -> core group; "deployments.apps" -> group apps.
  const auto dot = c.name.find('.');
  const std::string resource = c.name.substr(0, dot);
  const std::string group = dot == std::string::npos ? "" : c.name.substr(dot + 1);
  const auto retry = [this, index](std::string why) {
    Cached& c = *cached_[index];
    c.discovery_error = why;
    if (!c.required) {
      // Cached on a request: a resource upstream does not have is simply not cached.
      log::verbose(1, "not caching", {{"resource", c.name}, {"reason", why}});
      return;
    }
    log::warning("cache discovery failed; retrying", {{"resource", c.name}, {"reason", why}});
    discovery_->after(std::chrono::seconds(2), [this, index] { discover(index); });
  };
  const auto find_in = [this, index, resource, group, retry](const std::string& group_version) {
    const std::string path = group.empty() ? "/api/" + group_version : "/apis/" + group_version;
    discovery_->get(path, [this, index, resource, group_version, path, retry](int status, std::string body) {
      rapidjson::Document doc;
      doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
      if (status != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resources") ||
          !doc["resources"].IsArray()) {
        retry("discovery " + path + " answered " + std::to_string(status));
        return;
      }
      for (const auto& r : doc["resources"].GetArray()) {
        if (!r.IsObject() || !r.HasMember("name") || !r["name"].IsString() || resource != r["name"].GetString()) continue;
        Cached& c = *cached_[index];
        if (!listable(r)) {
          c.discovery_error = "does not support list and watch";
          if (c.required) log::warning("not caching", {{"resource", c.name}, {"reason", c.discovery_error}});
          c.required = false;  // nothing to wait for
          return;
        }
        const auto slash = group_version.find('/');
        const std::string group = slash == std::string::npos ? "" : group_version.substr(0, slash);
        const bool namespaced = r.HasMember("namespaced") && r["namespaced"].IsBool() && r["namespaced"].GetBool();
        cache::ResourceFields fields = cache::selectableFields(group, resource, namespaced);
        // Field selectors are read from JSON only: a protobuf cache selects on metadata.
        if (c.encoding == cache::Encoding::kProtobuf) fields.fields.clear();
        c.info = {(path + "/" + resource), r.HasMember("kind") && r["kind"].IsString() ? r["kind"].GetString() : "",
                  group_version, fields.fields, c.encoding};
        c.discovery_error.clear();
        c.transport = std::make_unique<Transport>(base_, pool_, credentials_, c.encoding);
        c.reflector = std::make_unique<cache::Reflector>(c.info, *c.store, *c.transport);
        log::info("caching", {{"resource", c.name}, {"path", c.info.path}, {"kind", c.info.kind},
                              {"encoding", cache::encodingName(c.encoding)}});
        auto served = std::make_shared<CachedResource>();
        served->encoding = c.encoding;
        served->group = group;
        served->version = slash == std::string::npos ? group_version : group_version.substr(slash + 1);
        served->resource = resource;
        served->kind = c.info.kind;
        served->list_kind = c.info.kind + "List";
        served->group_version = group_version;
        served->namespaced = namespaced;
        served->path = c.info.path;
        served->fields = std::move(fields);
        served->store = c.store.get();
        served->reflector = c.reflector.get();
        served->request_progress = [this, reflector = c.reflector.get()] {
          {
            std::lock_guard lock(requested_mu_);
            if (!progress_wanted_.insert(reflector).second) return;
          }
          event_active(requested_ev_, EV_READ, 0);
        };
        {
          std::lock_guard lock(c.served_mu);
          c.served = served;
        }
        {
          std::lock_guard lock(registry_mu_);
          registry_.push_back(std::move(served));
        }
        c.reflector->start();
        return;
      }
      retry("no resource " + resource + " in " + path);
    });
  };
  if (group.empty()) {
    find_in("v1");
    return;
  }
  discovery_->get("/apis/" + group, [group, find_in, retry](int status, std::string body) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (status != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("preferredVersion") ||
        !doc["preferredVersion"].IsObject() || !doc["preferredVersion"].HasMember("groupVersion") ||
        !doc["preferredVersion"]["groupVersion"].IsString()) {
      retry("no API group " + group + " (HTTP " + std::to_string(status) + ")");
      return;
    }
    find_in(doc["preferredVersion"]["groupVersion"].GetString());
  });
}

CacheManager::Found CacheManager::find(std::string_view group, std::string_view version,
                                       std::string_view resource) const {
  Found found;
  std::lock_guard lock(registry_mu_);
  for (const auto& r : registry_) {
    if (r->group != group || r->version != version || r->resource != resource) continue;
    if (r->encoding == cache::Encoding::kJson && r->reflector->synced()) found.json = r;
    if (r->encoding == cache::Encoding::kProtobuf && (r->reflector->synced() || r->reflector->unsupported())) {
      found.protobuf = r;
    }
  }
  return found;
}

bool CacheManager::synced() const {
  for (const auto& c : cached_) {
    if (c->required && (!c->reflector || !c->reflector->synced())) return false;
  }
  return true;
}

std::string CacheManager::notSyncedReason() const {
  for (const auto& c : cached_) {
    if (!c->required) continue;
    if (!c->reflector) return c->name + ": " + c->discovery_error;
    if (!c->reflector->synced()) return c->name + ": not synced yet (" + c->reflector->lastError() + ")";
  }
  return "";
}

std::string CacheManager::debugList(const std::string& resource) const {
  for (const auto& c : cached_) {
    if (c->name != resource || c->encoding != cache::Encoding::kJson) continue;
    const auto snap = c->store->current();
    std::string out = R"({"resourceVersion":")" + std::to_string(snap->resource_version) + R"(","items":[)";
    bool first = true;
    for (auto cur = snap->objects.lowerBound(); cur.valid(); cur.next()) {
      if (!first) out += ',';
      first = false;
      out += cur.object()->bytes;
    }
    return out + "]}\n";
  }
  return "";
}

}  // namespace kcp::proxy
