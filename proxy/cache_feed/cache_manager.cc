#include "proxy/cache_feed/cache_manager.h"

#include <rapidjson/document.h>

#include <filesystem>
#include <list>
#include <stdexcept>

#include "cache/json_scan.h"
#include "cache/selectable_fields.h"
#include "cache/state_file.h"
#include "config/log.h"
#include "proxy/cache_feed/reflector_transport.h"

namespace kcp::proxy {
namespace {

constexpr std::string_view kStateSuffix = ".state";
// Aggregated discovery (apidiscovery.k8s.io/v2), or the plain form from an
// upstream without it.
const std::string kAggregatedDiscovery =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

struct CacheManager::SaveJob {
  std::string file;
  cache::StateHeader header;
  cache::SnapshotPtr snapshot;
};

// How often a configured resource that is gone upstream is looked for again.
constexpr std::chrono::seconds kGoneRecheck{30};

struct CacheManager::Cached {
  std::string name;  // as configured
  cache::Encoding encoding = cache::Encoding::kJson;
  cache::ResourceInfo info;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<ReflectorUpstream> transport;
  std::unique_ptr<cache::Reflector> reflector;
  std::string discovery_error = "not discovered yet";
  bool required = true;  // configured: readiness waits for it (not: cached on a first request)
  std::mutex served_mu;  // /metrics reads `served` on the admin loop's scrape
  std::shared_ptr<const CachedResource> served;
};

CacheManager::CacheManager(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials,
                           std::vector<std::string> resources, bool lazy, bool protobuf,
                           cache::StoreLimits limits, Persistence persistence, Metrics& metrics)
    : base_(base),
      pool_(pool),
      credentials_(credentials),
      limits_(limits),
      metrics_(metrics),
      lazy_(lazy),
      protobuf_(protobuf),
      configured_(std::move(resources)),
      discovery_(std::make_unique<ReflectorUpstream>(base, pool, credentials)),
      requested_ev_(event_new(base, -1, 0, onRequested, this)),
      persistence_(std::move(persistence)) {
  if (requested_ev_ == nullptr)
    throw std::runtime_error("cache: cannot create its event (libevent)");  // at start-up
  if (persistence_.dir.empty()) return;
  metrics_.addGauge(
      "kube_cache_proxy_cache_state_saves_total", "result=\"ok\"",
      "Resources whose cache was saved for a warm restart (--warm-restart), by result.",
      [this] { return double(saves_ok_.load()); });
  metrics_.addGauge("kube_cache_proxy_cache_state_saves_total", "result=\"error\"", "",
                    [this] { return double(saves_failed_.load()); });
  saver_ = std::thread([this] { saverLoop(); });
}

CacheManager::~CacheManager() {
  if (saver_.joinable()) {
    {
      std::lock_guard lock(save_mu_);
      save_stop_ = true;
    }
    save_cv_.notify_all();
    saver_.join();
  }
  event_free(requested_ev_);
}

void CacheManager::start() {
  for (const auto& name : configured_) {
    if (name == "*") {
      walkDiscovery(true);
    } else {
      add(name, true, cache::Encoding::kJson);
      if (protobuf_) add(name, true, cache::Encoding::kProtobuf);
    }
  }
  if (persistence_.dir.empty()) return;
  // What was cached before (lazily, or as protobuf) is cached again at once.
  std::error_code ec;
  std::filesystem::create_directories(persistence_.dir, ec);
  if (ec)
    log::warning("cannot create the cache state folder",
                 {{"dir", persistence_.dir}, {"error", ec.message()}});
  for (const auto& entry : std::filesystem::directory_iterator(persistence_.dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!file.ends_with(kStateSuffix)) continue;
    file.resize(file.size() - kStateSuffix.size());
    const auto dot = file.rfind('.');
    if (dot == std::string::npos) continue;
    const std::string encoding = file.substr(dot + 1);
    if (encoding != "json" && encoding != "protobuf") continue;
    add(file.substr(0, dot), false,
        encoding == "json" ? cache::Encoding::kJson : cache::Encoding::kProtobuf);
  }
  discovery_->after(persistence_.interval, [this] { scheduleSave(); });
}

void CacheManager::startReflector(size_t index) {
  Cached& c = *cached_[index];
  if (c.encoding == cache::Encoding::kProtobuf) {
    // A custom resource has no protobuf form: its JSON cache knows (sorted
    // keys) without a protobuf LIST, which kube-apiserver would answer with
    // the whole JSON. Wait for it, when there is one.
    for (const auto& json : cached_) {
      if (json->name != c.name || json->encoding != cache::Encoding::kJson || !json->reflector)
        continue;
      if (json->reflector->sortedListKeys()) {
        c.reflector->markUnsupported();
        return;
      }
      if (!json->reflector->synced() && !json->reflector->gone()) {
        discovery_->after(std::chrono::milliseconds(200), [this, index] { startReflector(index); });
        return;
      }
    }
  }
  if (!persistence_.dir.empty()) {
    const std::string file = persistence_.dir + "/" + cache::stateFileName(c.name, c.encoding);
    std::string error;
    if (auto saved = cache::readState(file, &error)) {
      const cache::StateHeader& h = saved->header;
      if (h.resource == c.name && h.encoding == c.encoding && h.path == c.info.path &&
          h.kind == c.info.kind && h.api_version == c.info.api_version) {
        log::info("resuming from saved state",
                  {{"resource", c.name},
                   {"encoding", cache::encodingName(c.encoding)},
                   {"objects", std::to_string(saved->objects.size())},
                   {"resourceVersion", std::to_string(h.resource_version)}});
        c.reflector->resume(saved->objects, h.resource_version, h.sorted_list_keys);
        return;
      }
      log::warning(
          "saved cache state is for another version of the resource; listing",
          {{"resource", c.name}, {"file", file}, {"saved_path", h.path}, {"saved_kind", h.kind}});
    } else if (std::filesystem::exists(file)) {
      log::warning("saved cache state unusable; listing",
                   {{"resource", c.name}, {"reason", error}});
    }
  }
  c.reflector->start();
}

std::vector<CacheManager::SaveJob> CacheManager::saveJobs() const {
  std::vector<SaveJob> jobs;
  for (const auto& c : cached_) {
    if (!c->reflector || !c->reflector->synced()) continue;
    cache::StateHeader h{c->name,
                         c->encoding,
                         c->info.path,
                         c->info.kind,
                         c->info.api_version,
                         0,
                         c->reflector->sortedListKeys()};
    jobs.push_back({persistence_.dir + "/" + cache::stateFileName(c->name, c->encoding),
                    std::move(h), c->store->current()});
  }
  return jobs;
}

bool CacheManager::save(const std::vector<SaveJob>& jobs) {
  bool ok = true;
  for (const auto& job : jobs) {
    std::string error;
    if (!cache::writeState(job.file, job.header, *job.snapshot, &error)) {
      log::warning("cannot save cache state",
                   {{"resource", job.header.resource}, {"error", error}});
      ok = false;
    }
  }
  return ok;
}

void CacheManager::scheduleSave() {
  {
    std::lock_guard lock(save_mu_);
    if (!save_busy_) {  // the previous save still running: skip this turn
      save_pending_ = saveJobs();
      save_busy_ = !save_pending_.empty();
    }
  }
  save_cv_.notify_all();
  discovery_->after(persistence_.interval, [this] { scheduleSave(); });
}

void CacheManager::saverLoop() {
  std::unique_lock lock(save_mu_);
  while (true) {
    save_cv_.wait(lock, [this] { return save_stop_ || !save_pending_.empty(); });
    if (save_stop_) return;
    std::vector<SaveJob> jobs = std::move(save_pending_);
    save_pending_.clear();
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& job : jobs) (save({job}) ? saves_ok_ : saves_failed_).fetch_add(1);
    log::verbose(1, "saved cache state",
                 {{"resources", std::to_string(jobs.size())},
                  {"seconds", std::to_string(seconds(std::chrono::steady_clock::now() - t0))}});
    lock.lock();
    save_busy_ = false;
    save_cv_.notify_all();
  }
}

void CacheManager::saveState() {
  if (persistence_.dir.empty()) return;
  {
    std::unique_lock lock(save_mu_);
    if (!save_pending_.empty()) {  // handed over but not taken yet: drop it, this save is newer
      save_pending_.clear();
      save_busy_ = false;
    }
    save_cv_.wait(lock, [this] { return !save_busy_; });  // not two writers on one file
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<SaveJob> jobs = saveJobs();
  size_t objects = 0;
  for (const auto& job : jobs) {
    objects += job.snapshot->objects.size();
    (save({job}) ? saves_ok_ : saves_failed_).fetch_add(1);
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f", seconds(std::chrono::steady_clock::now() - t0));
  log::info("saved cache state for a warm restart", {{"dir", persistence_.dir},
                                                     {"resources", std::to_string(jobs.size())},
                                                     {"objects", std::to_string(objects)},
                                                     {"seconds", secs}});
}

void CacheManager::add(const std::string& name, bool required, cache::Encoding encoding) {
  for (size_t i = 0; i < cached_.size(); ++i) {
    const auto& c = cached_[i];
    if (c->name != name || c->encoding != encoding) continue;
    // Gone upstream and asked for again (a request, discovery): back?
    if (c->reflector && c->reflector->gone()) discover(i);
    return;
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
  metrics_.addGauge("kube_cache_proxy_cache_snapshots", labels,
                    "Snapshots held for continue tokens.",
                    [cp] { return double(cp->store->stats().snapshots); });
  metrics_.addGauge("kube_cache_proxy_cache_history_events", labels,
                    "Events held for watch resume.",
                    [cp] { return double(cp->store->stats().history_events); });
  metrics_.addGauge(
      "kube_cache_proxy_cache_history_bytes", labels,
      "Bytes of the events held for watch resume (their objects are mostly shared with the store).",
      [cp] { return double(cp->store->stats().history_bytes); });
  metrics_.addGauge("kube_cache_proxy_cache_relists_total", labels,
                    "Relists since start (410 or errors).",
                    [cp] { return cp->reflector ? double(cp->reflector->relists()) : 0.0; });
  metrics_.addGauge("kube_cache_proxy_cache_reconnects_total", labels,
                    "Watch reconnects since start.",
                    [cp] { return cp->reflector ? double(cp->reflector->reconnects()) : 0.0; });
  const auto counter = [cp](std::atomic<uint64_t> CachedResource::*member) {
    return [cp, member] {
      std::lock_guard lock(cp->served_mu);
      return cp->served ? double(((*cp->served).*member).load()) : 0.0;
    };
  };
  metrics_.addGauge(
      "kube_cache_proxy_watchers_closed_behind_total", labels,
      "Client watches closed because they fell behind the event history (too slow, or the cache "
      "relisted); their clients resume or relist.",
      counter(&CachedResource::watchers_too_slow));
  metrics_.addGauge(
      "kube_cache_proxy_consistent_read_probes_total", labels,
      "One-item LISTs sent upstream to learn its current resourceVersion for a consistent read.",
      counter(&CachedResource::consistent_read_probes));
  metrics_.addGauge("kube_cache_proxy_consistent_reads_total", labels + ",served_from=\"cache\"",
                    "Consistent reads (LIST without resourceVersion) tried on the cache, by how "
                    "they were answered.",
                    counter(&CachedResource::consistent_reads_from_cache));
  metrics_.addGauge("kube_cache_proxy_consistent_reads_total", labels + ",served_from=\"upstream\"",
                    "", counter(&CachedResource::consistent_reads_forwarded));
  metrics_.addGauge("kube_cache_proxy_consistent_reads_total",
                    labels + ",served_from=\"stale-cache\"", "",
                    counter(&CachedResource::consistent_reads_stale));
  metrics_.addGauge("kube_cache_proxy_cache_last_update_age_seconds", labels,
                    "Seconds since the cache last heard from upstream for this resource (event, "
                    "bookmark or relist); "
                    "kube-apiserver sends a bookmark about every minute.",
                    [cp] {
                      return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                           cp->store->stats().last_update)
                          .count();
                    });
  metrics_.addGauge(
      "kube_cache_proxy_cache_lag_revisions", labels,
      "How far the cache is behind the newest resourceVersion upstream reported (by a consistent "
      "read's probe), in etcd revisions.",
      [cp] {
        std::lock_guard lock(cp->served_mu);
        if (!cp->served) return 0.0;
        const uint64_t up = cp->served->upstream_resource_version.load();
        const uint64_t at = cp->store->stats().resource_version;
        return up > at ? double(up - at) : 0.0;
      });
  const auto served_seconds = [cp](auto of) {
    return [cp, of] {
      std::lock_guard lock(cp->served_mu);
      return cp->served ? seconds(of(*cp->served, std::chrono::steady_clock::now())) : 0.0;
    };
  };
  metrics_.addGauge(
      "kube_cache_proxy_cache_lag_seconds", labels,
      "How long the cache has been behind the newest resourceVersion upstream reported (0 once "
      "it has reached it).",
      served_seconds([](const CachedResource& r, auto now) { return r.lag(now); }));
  metrics_.addGauge(
      "kube_cache_proxy_cache_staleness_seconds", labels,
      "How long the cache may have been missing upstream's changes: without an open upstream watch "
      "(before the first sync, or since a watch broke until its resumed watch is heard from), or "
      "behind upstream; what --max-staleness bounds.",
      served_seconds([](const CachedResource& r, auto now) { return r.staleness(now); }));
  metrics_.addGauge("kube_cache_proxy_cache_synced", labels, "1 once the first LIST completed.",
                    [cp] { return cp->reflector && cp->reflector->synced() ? 1.0 : 0.0; });
  discover(cached_.size() - 1);
}

void CacheManager::requestCaching(std::string_view group, std::string_view resource,
                                  cache::Encoding encoding) {
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

void CacheManager::onRequested(evutil_socket_t, short, void* self) noexcept {
  auto* m = static_cast<CacheManager*>(self);
  std::vector<std::pair<std::string, cache::Encoding>> names;
  std::set<cache::Reflector*> progress;
  {
    std::lock_guard lock(m->requested_mu_);
    names.swap(m->requested_);
    progress.swap(m->progress_wanted_);
  }
  for (cache::Reflector* r : progress) {
    try {
      r->requestProgress();
    } catch (...) {
      reportInternalError(Metrics::InternalError::kEventCallback,
                          "cache progress request");  // a later one asks again
    }
  }
  for (const auto& [name, encoding] : names) {
    try {
      log::info("caching on first request",
                {{"resource", name}, {"encoding", cache::encodingName(encoding)}});
      m->add(name, false, encoding);
      // Both forms at once, as for configured resources: kube's own components
      // read protobuf, and each form's first request would be forwarded.
      if (encoding == cache::Encoding::kJson && m->protobuf_)
        m->add(name, false, cache::Encoding::kProtobuf);
    } catch (...) {
      // Not cached after all: its requests go on being forwarded.
      reportInternalError(Metrics::InternalError::kEventCallback, "cache on first request");
    }
  }
}

void CacheManager::walkDiscovery(bool required) {
  // Every resource that supports list and watch, in every group's preferred
  // version; walked again every minute so custom resources defined later are
  // picked up. Aggregated discovery (kube-apiserver 1.30+) answers for all
  // groups at once; an upstream without it answers /apis with a plain
  // APIGroupList, and then each group's preferred version is asked for.
  const auto add_listable = [this, required](const std::string& group,
                                             const rapidjson::Value& resources,
                                             const char* name_key) {
    for (const auto& r : resources.GetArray()) {
      if (!r.IsObject() || !r.HasMember(name_key) || !r[name_key].IsString() || !listable(r))
        continue;
      const std::string name = r[name_key].GetString();
      if (name.find('/') != std::string::npos) continue;  // a subresource
      add(group.empty() ? name : name + "." + group, required, cache::Encoding::kJson);
      if (protobuf_)
        add(group.empty() ? name : name + "." + group, required, cache::Encoding::kProtobuf);
    }
  };
  const auto add_list = [add_listable](const std::string& group, const std::string& body) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resources") ||
        !doc["resources"].IsArray())
      return;
    add_listable(group, doc["resources"], "name");
  };
  // APIGroupDiscoveryList: items (groups) -> versions, preferred first -> resources.
  const auto add_aggregated = [add_listable](const rapidjson::Document& doc) {
    for (const auto& g : doc["items"].GetArray()) {
      if (!g.IsObject() || !g.HasMember("versions") || !g["versions"].IsArray() ||
          g["versions"].Empty())
        continue;
      std::string group;
      if (g.HasMember("metadata") && g["metadata"].IsObject() && g["metadata"].HasMember("name") &&
          g["metadata"]["name"].IsString()) {
        group = g["metadata"]["name"].GetString();
      }
      const auto& preferred = g["versions"][0];
      if (preferred.IsObject() && preferred.HasMember("resources") &&
          preferred["resources"].IsArray()) {
        add_listable(group, preferred["resources"], "resource");
      }
    }
  };
  const auto aggregated = [](const rapidjson::Document& doc) {
    return doc.IsObject() && doc.HasMember("kind") && doc["kind"] == "APIGroupDiscoveryList" &&
           doc.HasMember("items") && doc["items"].IsArray();
  };
  discovery_->get("/api", kAggregatedDiscovery,
                  [this, add_list, add_aggregated, aggregated](int status, std::string body) {
                    rapidjson::Document doc;
                    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
                    if (status == 200 && !doc.HasParseError() && aggregated(doc)) {
                      add_aggregated(doc);
                      return;
                    }
                    discovery_->get("/api/v1", [add_list](int status, std::string body) {
                      if (status == 200) add_list("", body);
                    });
                  });
  discovery_->get("/apis", kAggregatedDiscovery,
                  [this, add_list, add_aggregated, aggregated](int status, std::string body) {
                    rapidjson::Document doc;
                    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
                    if (status != 200 || doc.HasParseError() || !doc.IsObject()) return;
                    if (aggregated(doc)) {
                      add_aggregated(doc);
                      return;
                    }
                    if (!doc.HasMember("groups") || !doc["groups"].IsArray()) return;
                    for (const auto& g : doc["groups"].GetArray()) {
                      if (!g.IsObject() || !g.HasMember("name") || !g["name"].IsString() ||
                          !g.HasMember("preferredVersion") || !g["preferredVersion"].IsObject() ||
                          !g["preferredVersion"].HasMember("groupVersion") ||
                          !g["preferredVersion"]["groupVersion"].IsString()) {
                        continue;
                      }
                      const std::string group = g["name"].GetString();
                      discovery_->get(
                          std::string("/apis/") + g["preferredVersion"]["groupVersion"].GetString(),
                          [add_list, group](int status, std::string body) {
                            if (status == 200) add_list(group, body);
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
    if (c.reflector && c.reflector->gone()) {
      // Still gone: a configured resource is looked for now and then,
      // quietly; a lazily cached one on the next request for it.
      log::verbose(1, "still gone upstream", {{"resource", c.name}, {"reason", why}});
      if (c.required) {
        discovery_->after(kGoneRecheck, [this, index] { recheckGone(index); });
      } else {
        std::lock_guard lock(requested_mu_);
        requested_names_.erase({c.name, c.encoding});
      }
      return;
    }
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
    discovery_->get(path, [this, index, resource, group_version, path, retry](int status,
                                                                              std::string body) {
      rapidjson::Document doc;
      doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
      if (status != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resources") ||
          !doc["resources"].IsArray()) {
        retry("discovery " + path + " answered " + std::to_string(status));
        return;
      }
      for (const auto& r : doc["resources"].GetArray()) {
        if (!r.IsObject() || !r.HasMember("name") || !r["name"].IsString() ||
            resource != r["name"].GetString())
          continue;
        Cached& c = *cached_[index];
        if (!listable(r)) {
          c.discovery_error = "does not support list and watch";
          if (c.required)
            log::warning("not caching", {{"resource", c.name}, {"reason", c.discovery_error}});
          c.required = false;  // nothing to wait for
          return;
        }
        const auto slash = group_version.find('/');
        const std::string group = slash == std::string::npos ? "" : group_version.substr(0, slash);
        const bool namespaced =
            r.HasMember("namespaced") && r["namespaced"].IsBool() && r["namespaced"].GetBool();
        cache::ResourceFields fields = cache::selectableFields(group, resource, namespaced);
        cache::ResourceInfo info{
            (path + "/" + resource),
            r.HasMember("kind") && r["kind"].IsString() ? r["kind"].GetString() : "", group_version,
            fields.fields, c.encoding};
        c.discovery_error.clear();
        // Back after it was gone, as it was: the same reflector starts again.
        // In another form (version, kind): new ones; the old ones stay, for
        // whatever request still points at them.
        if (!c.reflector || info.path != c.info.path || info.kind != c.info.kind ||
            info.api_version != c.info.api_version) {
          if (c.reflector) {
            retired_.push_back(
                {std::move(c.transport), std::move(c.reflector), std::move(c.store)});
            c.store = std::make_unique<cache::Store>(limits_);
          }
          c.info = std::move(info);
          c.transport = std::make_unique<ReflectorUpstream>(base_, pool_, credentials_, c.encoding);
          c.reflector = std::make_unique<cache::Reflector>(c.info, *c.store, *c.transport);
          c.reflector->onGone([this, index] { onGone(index); });
        }
        log::info("caching", {{"resource", c.name},
                              {"path", c.info.path},
                              {"kind", c.info.kind},
                              {"encoding", cache::encodingName(c.encoding)}});
        auto served = std::make_shared<CachedResource>();
        served->encoding = c.encoding;
        served->group = group;
        served->version =
            slash == std::string::npos ? group_version : group_version.substr(slash + 1);
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
        startReflector(index);
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
    if (status != 200 || doc.HasParseError() || !doc.IsObject() ||
        !doc.HasMember("preferredVersion") || !doc["preferredVersion"].IsObject() ||
        !doc["preferredVersion"].HasMember("groupVersion") ||
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
    if (r->encoding == cache::Encoding::kProtobuf &&
        (r->reflector->synced() || r->reflector->unsupported())) {
      found.protobuf = r;
    }
  }
  return found;
}

std::optional<std::pair<std::string, std::chrono::steady_clock::duration>> CacheManager::stalest()
    const {
  std::optional<std::pair<std::string, std::chrono::steady_clock::duration>> worst;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& c : cached_) {
    if (!c->required || !c->reflector || !c->reflector->synced()) continue;
    std::shared_ptr<const CachedResource> served;
    {
      std::lock_guard lock(c->served_mu);
      served = c->served;
    }
    if (!served) continue;
    const auto s = served->staleness(now);
    if (!worst || s > worst->second) worst = {c->name, s};
  }
  return worst;
}

void CacheManager::onGone(size_t index) {
  Cached& c = *cached_[index];
  std::shared_ptr<const CachedResource> served;
  {
    std::lock_guard lock(c.served_mu);
    served = c.served;  // kept: requests in flight may still point at it
  }
  if (served) {
    // Requests go upstream now (kube-apiserver's own 404), and client
    // watches end, as kube-apiserver ends them when a resource goes.
    served->gone.store(true);
    std::lock_guard lock(registry_mu_);
    std::erase(registry_, served);
  }
  c.store->clear();  // wakes the watchers; the objects' memory goes with the last reader
  c.discovery_error = "gone upstream";
  {
    std::lock_guard lock(requested_mu_);
    requested_names_.erase({c.name, c.encoding});  // a client's request asks for it again
  }
  if (c.required) discovery_->after(kGoneRecheck, [this, index] { recheckGone(index); });
}

void CacheManager::recheckGone(size_t index) {
  const Cached& c = *cached_[index];
  if (c.reflector && c.reflector->gone()) discover(index);
}

bool CacheManager::synced() const {
  for (const auto& c : cached_) {
    // (A protobuf cache of a custom resource finds it has no protobuf form: done.)
    // (A resource gone upstream is not waited for either.)
    if (c->required && (!c->reflector || !(c->reflector->synced() || c->reflector->unsupported() ||
                                           c->reflector->gone()))) {
      return false;
    }
  }
  return true;
}

std::string CacheManager::notSyncedReason() const {
  for (const auto& c : cached_) {
    if (!c->required) continue;
    if (!c->reflector) return c->name + ": " + c->discovery_error;
    if (!c->reflector->synced() && !c->reflector->unsupported() && !c->reflector->gone()) {
      return c->name + ": not synced yet (" + c->reflector->lastError() + ")";
    }
  }
  return "";
}

std::string CacheManager::debugList(const std::string& resource) const {
  for (const auto& c : cached_) {
    if (c->name != resource || c->encoding != cache::Encoding::kJson) continue;
    const auto snap = c->store->current();
    std::string out =
        R"({"resourceVersion":")" + std::to_string(snap->resource_version) + R"(","items":[)";
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
