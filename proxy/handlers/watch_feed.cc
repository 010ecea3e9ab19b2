#include "proxy/handlers/watch_feed.h"

#include <new>

#include "proxy/ops/metrics.h"

namespace kcp::proxy {

WatchFeed::WatchFeed(event_base* base, cache::Store& store)
    : store_(store), wake_(event_new(base, -1, 0, onWake, this)) {
  if (wake_ == nullptr) throw std::bad_alloc();
  // Runs on the store's writer thread: event_active is thread-safe (libevent
  // threading is on), and several changes before the loop runs wake it once.
  try {
    subscription_ = store_.subscribe([ev = wake_] { event_active(ev, EV_READ, 0); });
  } catch (...) {
    event_free(wake_);  // no destructor runs for a constructor that throws
    throw;
  }
}

WatchFeed::~WatchFeed() {
  store_.unsubscribe(subscription_);  // after this no writer touches wake_
  event_free(wake_);
}

void WatchFeed::add(Watcher* w) {
  watchers_.insert(w);
}

void WatchFeed::remove(Watcher* w) {
  watchers_.erase(w);
}

void WatchFeed::onWake(evutil_socket_t, short, void* self) noexcept {
  for (Watcher* w : static_cast<WatchFeed*>(self)->watchers_) {
    try {
      w->onStoreChanged();
    } catch (...) {
      // A watcher should end its own stream on failure (CachedWatch does);
      // either way the others still wake.
      reportInternalError(Metrics::InternalError::kEventCallback, "watch feed wake-up");
    }
  }
}

}  // namespace kcp::proxy
