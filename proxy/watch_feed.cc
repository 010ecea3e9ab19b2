#include "proxy/watch_feed.h"

namespace kcp::proxy {

WatchFeed::WatchFeed(event_base* base, cache::Store& store)
    : store_(store), wake_(event_new(base, -1, 0, onWake, this)) {
  // Runs on the store's writer thread: event_active is thread-safe (libevent
  // threading is on), and several changes before the loop runs wake it once.
  subscription_ = store_.subscribe([ev = wake_] { event_active(ev, EV_READ, 0); });
}

WatchFeed::~WatchFeed() {
  store_.unsubscribe(subscription_);  // after this no writer touches wake_
  event_free(wake_);
}

void WatchFeed::add(Watcher* w) { watchers_.insert(w); }

void WatchFeed::remove(Watcher* w) { watchers_.erase(w); }

void WatchFeed::onWake(evutil_socket_t, short, void* self) {
  for (Watcher* w : static_cast<WatchFeed*>(self)->watchers_) w->onStoreChanged();
}

}  // namespace kcp::proxy
