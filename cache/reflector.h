// Keeps one resource's Store in step with kube-apiserver, as client-go's
// reflector does: a paged LIST (limit 500), then a WATCH from the list's
// resourceVersion with bookmarks; the watch resumes from the last
// resourceVersion seen when it ends, and a 410 Gone (from the watch or an
// expired continue token) means a relist, whose difference reaches watchers
// through the store. Retries back off exponentially with jitter.
//
// Pure logic: the HTTP transport and the timers are injected (proxy/ provides
// them over its upstream pool), so tests drive it with recorded responses.
// All calls happen on one thread, the transport's.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.h"

namespace kcp::cache {

// What the reflector needs from the network.
class ReflectorTransport {
 public:
  virtual ~ReflectorTransport() = default;
  // GET `path`; `done(status, body)` with status 0 and the reason in `body`
  // on a transport failure.
  virtual void get(const std::string& path,
                   std::function<void(int status, std::string body)> done) = 0;
  // GET `path` as a watch: `on_event` per event (a JSON line, or a protobuf
  // frame without its length prefix, in the transport's encoding); `on_end`
  // when the stream ends (status 0: transport failure; 200: ended normally).
  virtual void watch(const std::string& path, std::function<void(std::string_view event)> on_event,
                     std::function<void(int status, std::string reason)> on_end) = 0;
  // Cancels the watch in progress, if any; its on_end is not called.
  virtual void cancelWatch() = 0;
  virtual void after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
};

struct ResourceInfo {
  std::string path;  // collection path, e.g. "/api/v1/configmaps" or "/apis/example.com/v1/widgets"
  std::string kind;  // e.g. "ConfigMap"
  std::string api_version;              // e.g. "v1"
  SelectableFields fields{};            // extracted from every object as it arrives
  Encoding encoding = Encoding::kJson;  // the transport asks for this one
};

class Reflector {
 public:
  Reflector(ResourceInfo resource, Store& store, ReflectorTransport& transport,
            uint32_t seed = std::random_device{}());
  void start();
  // Warm restart: instead of a LIST, starts from `objects` (bytes as a store
  // holds them) saved at `rv`. The watch resumes from rv with a 3 s timeout,
  // and the reflector counts as synced once a bookmark or the watch's normal
  // end shows it has caught up with kube-apiserver (a quiet resource gets no
  // bookmark); a 410 (rv compacted away) or an unusable object means a
  // relist, as at any other time.
  void resume(const std::vector<std::string>& objects, uint64_t rv, bool sorted_list_keys);
  // Asks for a bookmark soon (a consistent read waits for the cache to reach
  // upstream's revision). kube-apiserver sends a watch bookmarks once a minute
  // and 2 s before its deadline, so the watch is resumed from where it is
  // with a 3 s timeout: about a second later a bookmark arrives at the
  // revision kube-apiserver's own cache has reached. No-op unless watching.
  void requestProgress();

  // The resource itself is gone upstream (its LIST or watch answered 404: a
  // deleted CRD, a version no longer served): the reflector stops, with no
  // retry, and calls this (on its thread). start() again when it is back.
  void onGone(std::function<void()> fn) { on_gone_ = std::move(fn); }

  enum class State { kListing, kWatching, kBackoff, kGone };
  State state() const { return state_; }
  // Readable from any thread (metrics, readiness).
  bool synced() const { return synced_; }
  uint64_t relists() const { return relists_; }
  uint64_t reconnects() const { return reconnects_; }
  // Whether kube-apiserver writes this resource's lists with sorted keys
  // ({"apiVersion":...}: custom resources) rather than kind first (typed).
  bool sortedListKeys() const { return sorted_list_keys_; }
  const std::string& lastError() const { return last_error_; }
  // Since when the cache may be missing upstream's changes: from start-up
  // until the first sync, and from a broken watch until its resumed watch
  // delivers an event or bookmark or ends normally (a reconnect's first
  // watch is a 3 s one, so that happens soon).
  // nullopt while the cache is current. Readable from any thread.
  std::optional<std::chrono::steady_clock::time_point> staleSince() const;
  // Protobuf only: upstream answered in JSON (a custom resource), so this
  // resource has no protobuf form; the reflector has stopped.
  bool unsupported() const { return unsupported_; }
  // Protobuf: known to be JSON only (a custom resource, as its JSON cache's
  // sorted-key lists show), so no LIST is spent finding out; see unsupported().
  void markUnsupported();
  // See onGone. Readable from any thread.
  bool gone() const { return gone_; }
  // Protobuf only: the object of a bookmark kube-apiserver sent (an empty
  // object of the kind with a resourceVersion; annotations removed), from
  // which the cache makes its own bookmarks; asked for right after the first
  // sync, null until it arrived. Readable from any thread.
  std::shared_ptr<const std::string> bookmarkTemplate() const { return bookmark_template_.load(); }

 private:
  void list(const std::string& continue_token);
  void onListPage(int status, const std::string& body);
  void watch();
  void templateWatch();
  void onWatchEvent(std::string_view line);
  void onWatchEnd(int status, const std::string& reason);
  void retry(const std::string& why, bool relist);
  void goneUpstream(const std::string& why);
  void finishResume();
  void markStale();
  void markCurrent();
  ObjectPtr toObject(std::string_view bytes, std::string* error) const;
  bool protobuf() const { return resource_.encoding == Encoding::kProtobuf; }

  ResourceInfo resource_;
  Store& store_;
  ReflectorTransport& transport_;
  std::mt19937 rnd_;
  State state_ = State::kListing;
  std::atomic<bool> synced_{false};
  std::atomic<bool> sorted_list_keys_{false};
  std::vector<ObjectPtr> listed_;  // pages of the LIST in progress
  uint64_t list_rv_ = 0;
  std::chrono::steady_clock::time_point list_started_;
  std::atomic<uint64_t> relists_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::chrono::milliseconds backoff_{0};
  bool progress_watch_ = false;  // the current watch is a short one, for a bookmark
  bool template_watch_ =
      false;  // the current watch is for a protobuf bookmark template (selects nothing)
  bool resuming_ = false;      // warm restart: synced at the first bookmark
  size_t resumed_events_ = 0;  // events replayed while resuming, for its log line
  // steady_clock ticks; 0 while current (see staleSince).
  std::atomic<int64_t> stale_since_{std::chrono::steady_clock::now().time_since_epoch().count()};
  std::string last_error_;
  std::atomic<bool> unsupported_{false};
  std::atomic<bool> gone_{false};
  std::function<void()> on_gone_;
  std::atomic<std::shared_ptr<const std::string>> bookmark_template_;
};

}  // namespace kcp::cache
