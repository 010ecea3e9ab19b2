#include "cache/reflector.h"

#include <cstdio>

#include "cache/json_scan.h"
#include "cache/protobuf.h"
#include "config/log.h"

namespace kcp::cache {
namespace {

constexpr std::chrono::milliseconds kInitialBackoff{200};
constexpr std::chrono::milliseconds kMaxBackoff{30000};

// A LIST page or a watch event, whichever the encoding.
struct ListPage {
  std::string resource_version, continue_token;
  std::vector<std::string_view> items;  // spans into the body
};
struct WatchEventView {
  std::string type;
  std::string_view object;  // the object (protobuf: the message inside the envelope)
};

std::optional<uint64_t> jsonBookmarkResourceVersion(std::string_view object) {
  const auto at = object.find("\"resourceVersion\":\"");
  if (at == std::string_view::npos) return std::nullopt;
  const auto start = at + 19, end = object.find('"', start);
  uint64_t rv = 0;
  if (end == std::string_view::npos || !parseResourceVersion(object.substr(start, end - start), rv))
    return std::nullopt;
  return rv;
}

}  // namespace

Reflector::Reflector(ResourceInfo resource, Store& store, ReflectorTransport& transport,
                     uint32_t seed)
    : resource_(std::move(resource)), store_(store), transport_(transport), rnd_(seed) {}

void Reflector::start() {
  gone_ = false;
  list("");
}

void Reflector::markUnsupported() {
  unsupported_ = true;
  state_ = State::kBackoff;
  log::info("no protobuf form; not caching it as protobuf", {{"resource", resource_.path}});
}

void Reflector::goneUpstream(const std::string& why) {
  state_ = State::kGone;
  gone_ = true;
  synced_ = false;
  last_error_ = why;
  stale_since_.store(0, std::memory_order_relaxed);  // not stale: there is nothing to miss
  log::info("resource gone upstream; not caching it",
            {{"resource", resource_.path},
             {"encoding", encodingName(resource_.encoding)},
             {"reason", why}});
  if (on_gone_) on_gone_();
}

void Reflector::resume(const std::vector<std::string>& objects, uint64_t rv,
                       bool sorted_list_keys) {
  list_started_ = std::chrono::steady_clock::now();
  std::vector<ObjectPtr> parsed;
  parsed.reserve(objects.size());
  std::string error;
  for (const auto& bytes : objects) {
    ObjectPtr obj = toObject(bytes, &error);
    if (!obj) {
      log::warning("saved cache state unusable; listing instead",
                   {{"resource", resource_.path}, {"reason", error}});
      start();
      return;
    }
    parsed.push_back(std::move(obj));
  }
  store_.replace(parsed, rv);
  sorted_list_keys_ = sorted_list_keys;
  resuming_ = true;
  resumed_events_ = 0;
  progress_watch_ = true;  // its bookmark tells that the cache has caught up
  watch();
}

std::optional<std::chrono::steady_clock::time_point> Reflector::staleSince() const {
  const int64_t ticks = stale_since_.load(std::memory_order_relaxed);
  if (ticks == 0) return std::nullopt;
  return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(ticks));
}

void Reflector::finishResume() {
  resuming_ = false;
  synced_ = true;
  const auto stats = store_.stats();
  char secs[32];
  std::snprintf(
      secs, sizeof secs, "%.2f",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - list_started_).count());
  log::info("resumed from saved state",
            {{"resource", resource_.path},
             {"encoding", encodingName(resource_.encoding)},
             {"objects", std::to_string(stats.objects)},
             {"bytes", std::to_string(stats.object_bytes)},
             {"seconds", secs},
             {"resourceVersion", std::to_string(stats.resource_version)},
             {"events_replayed", std::to_string(resumed_events_)}});
}

void Reflector::markStale() {
  int64_t fresh = 0;
  stale_since_.compare_exchange_strong(fresh,
                                       std::chrono::steady_clock::now().time_since_epoch().count(),
                                       std::memory_order_relaxed);
}

void Reflector::markCurrent() {
  stale_since_.store(0, std::memory_order_relaxed);
  backoff_ = std::chrono::milliseconds(0);  // upstream works again: the next failure retries soon
}

ObjectPtr Reflector::toObject(std::string_view bytes, std::string* error) const {
  if (protobuf()) return protobuf::parseObject(std::string(bytes), error, resource_.fields);
  // Stored in list-item form: typed objects lose the kind/apiVersion prefix
  // that GET and watch bodies carry (custom resources keep theirs).
  std::optional<std::string> item = stripTypeMeta(bytes, resource_.kind, resource_.api_version);
  return parseJsonObject(item ? std::move(*item) : std::string(bytes), error, resource_.fields);
}

void Reflector::list(const std::string& continue_token) {
  state_ = State::kListing;
  if (continue_token.empty()) {
    listed_.clear();
    list_started_ = std::chrono::steady_clock::now();
  }
  // The first page is a consistent read; later pages continue its snapshot.
  std::string path = resource_.path + "?limit=500";
  if (!continue_token.empty()) path += "&continue=" + continue_token;
  transport_.get(path, [this](int status, std::string body) { onListPage(status, body); });
}

void Reflector::onListPage(int status, const std::string& body) {
  if (status == 410) {  // the continue token expired: start the LIST again
    retry("LIST continue token expired", true);
    return;
  }
  if (status == 404) {
    goneUpstream("LIST answered 404: " + body.substr(0, 100));
    return;
  }
  if (status != 200) {
    retry("LIST answered " + std::to_string(status) + ": " + body.substr(0, 200), true);
    return;
  }
  std::string error;
  std::optional<ListPage> page;
  if (protobuf()) {
    const auto envelope = protobuf::unwrap(body);
    if (!envelope && body.starts_with("{")) {
      // Only built-in types have a protobuf form; this one is JSON only.
      markUnsupported();
      return;
    }
    if (auto p = envelope ? protobuf::scanList(envelope->raw, &error) : std::nullopt) {
      page = ListPage{std::string(p->resource_version), std::string(p->continue_token),
                      std::move(p->items)};
    } else if (!envelope) {
      error = "not a protobuf envelope";
    }
  } else {
    sorted_list_keys_ = body.starts_with("{\"apiVersion\"");
    if (auto p = scanJsonList(body, &error)) {
      page = ListPage{p->resource_version, p->continue_token, std::move(p->items)};
    }
  }
  if (!page || !parseResourceVersion(page->resource_version, list_rv_)) {
    retry("LIST body unusable: " + (page ? "no resourceVersion" : error), true);
    return;
  }
  for (const auto item : page->items) {
    ObjectPtr obj = toObject(item, &error);
    if (!obj) {
      retry("LIST item unusable: " + error, true);
      return;
    }
    listed_.push_back(std::move(obj));
  }
  if (!page->continue_token.empty()) {
    list(page->continue_token);
    return;
  }
  const auto diff = store_.replace(listed_, list_rv_);
  size_t bytes = 0;
  for (const auto& o : listed_) bytes += o->bytes.size();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - list_started_).count();
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f", seconds);
  // One progress line per resource and (re)list: what it holds and what it took.
  log::info(synced_ ? "relisted" : "synced", {{"resource", resource_.path},
                                              {"encoding", encodingName(resource_.encoding)},
                                              {"objects", std::to_string(listed_.size())},
                                              {"bytes", std::to_string(bytes)},
                                              {"seconds", secs},
                                              {"resourceVersion", std::to_string(list_rv_)},
                                              {"changes", std::to_string(diff.size())}});
  listed_.clear();
  synced_ = true;
  resuming_ = false;
  markCurrent();
  backoff_ = std::chrono::milliseconds(0);
  if (protobuf() && !bookmark_template_.load()) {
    templateWatch();
  } else {
    watch();
  }
}

// A protobuf cache makes its bookmarks from an empty object of the kind,
// whose bytes only kube-apiserver writes: a watch-list that selects nothing
// gets its closing bookmark at once (a plain watch may wait a minute).
void Reflector::templateWatch() {
  state_ = State::kWatching;
  template_watch_ = true;
  const uint64_t rv = store_.current()->resource_version;
  transport_.watch(
      resource_.path +
          "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks="
          "true"
          "&timeoutSeconds=10&labelSelector=kube-cache-proxy%2Fnone%2C%21kube-cache-proxy%2Fnone"
          "&resourceVersion=" +
          std::to_string(rv),
      [this](std::string_view frame) {
        std::string error;
        const auto e = protobuf::scanWatchEvent(frame, &error);
        const auto envelope = e ? protobuf::unwrap(e->object) : std::nullopt;
        if (!envelope || e->type != "BOOKMARK") return;  // nothing else is of use here
        // Not applied to the store: this watch saw none of the events.
        if (auto empty = protobuf::withoutAnnotations(envelope->raw)) {
          bookmark_template_.store(std::make_shared<const std::string>(std::move(*empty)));
        }
        transport_.cancelWatch();
        template_watch_ = false;
        watch();
      },
      [this](int status, const std::string& reason) {
        log::warning(
            "no bookmark template from kube-apiserver; protobuf watches wait for its next bookmark",
            {{"resource", resource_.path}, {"status", std::to_string(status)}, {"reason", reason}});
        template_watch_ = false;
        watch();
      });
}

void Reflector::requestProgress() {
  if (state_ != State::kWatching || progress_watch_ || template_watch_) return;
  transport_.cancelWatch();
  progress_watch_ = true;
  watch();
}

void Reflector::watch() {
  state_ = State::kWatching;
  const uint64_t rv = store_.current()->resource_version;
  transport_.watch(
      resource_.path + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + std::to_string(rv) +
          (progress_watch_ ? "&timeoutSeconds=3" : ""),
      [this](std::string_view line) { onWatchEvent(line); },
      [this](int status, const std::string& reason) { onWatchEnd(status, reason); });
}

void Reflector::onWatchEvent(std::string_view line) {
  std::string error;
  std::optional<WatchEventView> event;
  if (protobuf()) {
    // The object is enveloped; the store keeps the message inside.
    const auto e = protobuf::scanWatchEvent(line, &error);
    const auto envelope = e ? protobuf::unwrap(e->object) : std::nullopt;
    if (envelope) event = WatchEventView{std::string(e->type), envelope->raw};
    if (e && !envelope) error = "watch event object is not a protobuf envelope";
  } else {
    if (auto e = scanJsonWatchEvent(line, &error))
      event = WatchEventView{std::move(e->type), e->object};
  }
  if (!event) {
    transport_.cancelWatch();
    retry("unusable watch event: " + error, false);
    return;
  }
  if (event->type == "ERROR") {
    // A Status: 410 Gone (resourceVersion compacted) means relist.
    transport_.cancelWatch();
    const bool gone = protobuf() ? protobuf::statusCode(event->object) == 410
                                 : event->object.find("\"code\":410") != std::string_view::npos;
    retry(
        gone ? "watch expired (410)" : "watch error: " + std::string(event->object.substr(0, 200)),
        gone);
    return;
  }
  if (event->type == "BOOKMARK") {
    // Bookmarks carry only metadata.resourceVersion (no name): read just that.
    if (const auto rv = protobuf() ? protobuf::resourceVersion(event->object)
                                   : jsonBookmarkResourceVersion(event->object)) {
      store_.bookmark(*rv);
      markCurrent();
      if (protobuf() && !bookmark_template_.load()) {
        if (auto empty = protobuf::withoutAnnotations(event->object)) {
          bookmark_template_.store(std::make_shared<const std::string>(std::move(*empty)));
        }
      }
      if (resuming_) finishResume();
    }
    if (progress_watch_) {
      // The bookmark asked for: back to a long watch, so another can be asked for at once.
      transport_.cancelWatch();
      progress_watch_ = false;
      watch();
    }
    return;
  }
  ObjectPtr obj = toObject(event->object, &error);
  const EventType type = event->type == "ADDED"      ? EventType::kAdded
                         : event->type == "MODIFIED" ? EventType::kModified
                         : event->type == "DELETED"  ? EventType::kDeleted
                                                     : EventType(-1);
  if (!obj || int(type) < 0 || !store_.apply(type, std::move(obj), &error)) {
    // Something does not add up: never guess, rebuild from a LIST.
    transport_.cancelWatch();
    retry("watch event not applicable (" + event->type + "): " + error, true);
    return;
  }
  ++resumed_events_;
  if (!resuming_) markCurrent();  // resuming: current only once the replay has ended (its bookmark)
}

void Reflector::onWatchEnd(int status, const std::string& reason) {
  if (status == 404) {
    goneUpstream("watch answered 404");
    return;
  }
  if (status == 410) {
    retry("watch expired (410)", true);
  } else if (status == 200) {
    // A normal end (server timeout): kube-apiserver has sent every event it
    // had when the watch began, so the cache is current as of then (a quiet
    // resource gets no bookmark: kube-apiserver sends none that would not
    // advance the watch). Resume at once from where we are.
    if (!progress_watch_) ++reconnects_;
    progress_watch_ = false;
    markCurrent();
    if (resuming_) finishResume();
    watch();
  } else {
    retry("watch ended: " + (status == 0 ? reason : "HTTP " + std::to_string(status)), false);
  }
}

void Reflector::retry(const std::string& why, bool relist) {
  markStale();
  last_error_ = why;
  progress_watch_ = false;
  state_ = State::kBackoff;
  if (relist) ++relists_;
  ++reconnects_;
  backoff_ = std::min(kMaxBackoff, backoff_.count() == 0 ? kInitialBackoff : backoff_ * 2);
  // Full jitter in [backoff/2, backoff], so many proxies do not retry in step.
  const auto delay = std::chrono::milliseconds(
      backoff_.count() / 2 + int64_t(rnd_() % uint32_t(backoff_.count() / 2 + 1)));
  log::warning("reflector retrying", {{"resource", resource_.path},
                                      {"reason", why},
                                      {"relist", relist ? "true" : "false"},
                                      {"in_ms", std::to_string(delay.count())}});
  transport_.after(delay, [this, relist] {
    if (relist) {
      resuming_ = false;
      list("");
    } else {
      // A short watch first: its bookmark shows soon that nothing was missed.
      progress_watch_ = true;
      watch();
    }
  });
}

}  // namespace kcp::cache
