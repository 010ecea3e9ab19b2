// One resource's cache: the objects as of a resourceVersion (a persistent
// B+tree), the recent past as snapshots by resourceVersion (for continue
// tokens and Exact reads) and as an event history (for watch resume).
//
// Threads: one writer (the resource's reflector) calls replace/apply/
// bookmark; any thread may read. Readers get immutable snapshots and event
// lists; the mutex only guards swapping pointers, never any I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/btree.h"
#include "cache/object.h"

namespace kcp::cache {

enum class EventType { kAdded, kModified, kDeleted };

// A change as a watcher sees it. For kDeleted, `object` is the last state
// with the deletion's resourceVersion (as kube-apiserver sends it).
struct Event {
  EventType type;
  ObjectPtr object;
  ObjectPtr previous;  // the state before, when there was one (selector transitions need it)
  uint64_t resource_version;
};
using EventPtr = std::shared_ptr<const Event>;

struct Snapshot {
  BTree objects;
  uint64_t resource_version = 0;
  std::chrono::steady_clock::time_point taken;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

struct StoreLimits {
  size_t history_events = 10000;
  size_t history_bytes = 256 << 20;
  std::chrono::seconds history_age{300};
  size_t snapshots = 1000;
  std::chrono::seconds snapshot_age{
      75};  // kube-apiserver keeps continue tokens ~ this long in its cache
};

class Store {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Store(StoreLimits limits = {}) : limits_(limits) {}

  // Replaces the contents (initial LIST, or relist after 410) as of `rv`, and
  // returns exactly what changed for watchers. The history restarts at `rv`:
  // older resourceVersions cannot be resumed from.
  std::vector<EventPtr> replace(const std::vector<ObjectPtr>& objects, uint64_t rv,
                                Clock::time_point now = Clock::now());

  // Applies one watch event. Refuses (returns false) an event whose
  // resourceVersion does not advance the store, or a delete/modify that does
  // not match the contents, so a broken stream cannot corrupt the cache.
  bool apply(EventType type, ObjectPtr object, std::string* error,
             Clock::time_point now = Clock::now());

  // A bookmark: nothing changed up to `rv`.
  void bookmark(uint64_t rv, Clock::time_point now = Clock::now());

  // Drops everything (the resource is gone upstream): objects, snapshots and
  // history, so their memory goes once readers let go; watchers are woken
  // and can resume from nothing. A later replace() starts afresh.
  void clear();

  SnapshotPtr current() const;
  // The snapshot as of exactly `rv` if still held: the newest one taken at or
  // before rv, provided no event happened between it and rv.
  SnapshotPtr snapshotAt(uint64_t rv) const;
  // Events with resourceVersion > rv, oldest first; nullopt when rv is older
  // than the history (the caller answers 410 Expired).
  std::optional<std::vector<EventPtr>> eventsSince(uint64_t rv) const;
  // Up to `max` events with resourceVersion > rv, oldest first, appended to
  // `out`; false when rv is older than the history (too old: 410, or a watcher
  // that fell behind).
  // `current` (if given) gets the store's resourceVersion at the same moment:
  // when fewer than `max` events came back, nothing else happened up to it.
  bool eventsAfter(uint64_t rv, size_t max, std::vector<EventPtr>& out,
                   uint64_t* current = nullptr) const;
  // The oldest resourceVersion a watch may resume from.
  uint64_t oldestResourceVersion() const;

  // Calls `fn` (on the writer's thread, after the change is visible) whenever
  // the store changes: watchers' wake-up. Returns an id for unsubscribe.
  size_t subscribe(std::function<void()> fn);
  void unsubscribe(size_t id);

  struct Stats {
    size_t objects, snapshots, history_events, history_bytes, object_bytes;
    uint64_t resource_version;
    Clock::time_point last_update;  // of the last event, bookmark or relist
  };
  Stats stats() const;

 private:
  std::vector<EventPtr> replaceLocked(const std::vector<ObjectPtr>& objects, uint64_t rv,
                                      Clock::time_point now);
  bool applyLocked(EventType type, ObjectPtr object, std::string* error, Clock::time_point now);
  void publish(BTree objects, uint64_t rv, Clock::time_point now);
  void appendHistory(EventPtr e, Clock::time_point now);
  void trim(Clock::time_point now);
  void notify();

  StoreLimits limits_;
  mutable std::mutex mu_;
  SnapshotPtr current_ = std::make_shared<Snapshot>();
  std::map<uint64_t, SnapshotPtr> snapshots_;  // by resourceVersion
  Clock::time_point last_update_ = Clock::now();
  std::deque<std::pair<EventPtr, Clock::time_point>> history_;
  size_t history_bytes_ = 0;
  size_t object_bytes_ = 0;
  uint64_t history_start_ = 0;  // events after this resourceVersion are all in history_
  std::mutex listeners_mu_;
  std::map<size_t, std::function<void()>> listeners_;
  size_t next_listener_ = 0;
};

}  // namespace kcp::cache
