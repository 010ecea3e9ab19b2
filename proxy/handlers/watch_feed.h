// Wakes one worker's watchers of one cached resource when its store changes.
// The store's writer (the reflector, on the admin loop) only activates an
// event on this worker's loop; the watchers then pull the new events from
// the store's shared history on their own thread, as their connections
// drain. Event bytes are shared by every watcher, never copied per watcher.
#pragma once

#include <event2/event.h>

#include <unordered_set>

#include "cache/store.h"

namespace kcp::proxy {

class WatchFeed {
 public:
  class Watcher {
   public:
    virtual ~Watcher() = default;
    // The store has changed (on this worker's loop). Must not add or remove
    // watchers: it only schedules the stream to pull (resumeResponse).
    virtual void onStoreChanged() = 0;
  };

  // Throws std::bad_alloc when libevent cannot make its wake-up event.
  WatchFeed(event_base* base, cache::Store& store);
  ~WatchFeed();
  WatchFeed(const WatchFeed&) = delete;
  WatchFeed& operator=(const WatchFeed&) = delete;

  void add(Watcher* w);
  void remove(Watcher* w);
  size_t watchers() const { return watchers_.size(); }

 private:
  static void onWake(evutil_socket_t, short, void* self) noexcept;

  cache::Store& store_;
  event* wake_;
  size_t subscription_;
  std::unordered_set<Watcher*> watchers_;
};

}  // namespace kcp::proxy
