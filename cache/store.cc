#include "cache/store.h"

#include <algorithm>
#include <cstdint>

namespace kcp::cache {
namespace {

size_t sizeOf(const Event& e) {
  return e.object->bytes.size() + 64;
}

}  // namespace

void Store::publish(BTree objects, uint64_t rv, Clock::time_point now) {
  auto snap = std::make_shared<Snapshot>(Snapshot{std::move(objects), rv, now});
  current_ = snap;
  last_update_ = now;
  snapshots_[rv] = std::move(snap);
}

void Store::appendHistory(EventPtr e, Clock::time_point now) {
  history_bytes_ += sizeOf(*e);
  history_.emplace_back(std::move(e), now);
}

void Store::trim(Clock::time_point now) {
  while (!history_.empty() &&
         (history_.size() > limits_.history_events || history_bytes_ > limits_.history_bytes ||
          now - history_.front().second > limits_.history_age)) {
    history_bytes_ -= sizeOf(*history_.front().first);
    history_start_ = history_.front().first->resource_version;
    history_.pop_front();
  }
  while (snapshots_.size() > 1 &&
         (snapshots_.size() > limits_.snapshots ||
          now - snapshots_.begin()->second->taken > limits_.snapshot_age)) {
    snapshots_.erase(snapshots_.begin());
  }
}

void Store::notify() {
  std::lock_guard lock(listeners_mu_);
  for (const auto& [id, fn] : listeners_) fn();
}

size_t Store::subscribe(std::function<void()> fn) {
  std::lock_guard lock(listeners_mu_);
  listeners_[next_listener_] = std::move(fn);
  return next_listener_++;
}

void Store::unsubscribe(size_t id) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(id);
}

std::vector<EventPtr> Store::replace(const std::vector<ObjectPtr>& objects, uint64_t rv,
                                     Clock::time_point now) {
  std::vector<EventPtr> diff = replaceLocked(objects, rv, now);
  notify();
  return diff;
}

std::vector<EventPtr> Store::replaceLocked(const std::vector<ObjectPtr>& objects, uint64_t rv,
                                           Clock::time_point now) {
  BTree tree;
  for (const auto& o : objects) tree = tree.upsert(o);
  std::lock_guard lock(mu_);
  // The difference, in key order: deletions of what is gone, additions and
  // modifications of what is new or changed.
  std::vector<EventPtr> diff;
  const BTree& old = current_->objects;
  auto a = old.lowerBound(), b = tree.lowerBound();
  while (a.valid() || b.valid()) {
    if (b.valid() && (!a.valid() || b.object()->key < a.object()->key)) {
      diff.push_back(std::make_shared<Event>(Event{EventType::kAdded, b.object(), nullptr, rv}));
      b.next();
    } else if (a.valid() && (!b.valid() || a.object()->key < b.object()->key)) {
      diff.push_back(
          std::make_shared<Event>(Event{EventType::kDeleted, a.object(), a.object(), rv}));
      a.next();
    } else {
      if (a.object()->resource_version != b.object()->resource_version ||
          a.object()->bytes != b.object()->bytes) {
        diff.push_back(
            std::make_shared<Event>(Event{EventType::kModified, b.object(), a.object(), rv}));
      }
      a.next();
      b.next();
    }
  }
  object_bytes_ = 0;
  for (auto c = tree.lowerBound(); c.valid(); c.next()) object_bytes_ += c.object()->bytes.size();
  history_.clear();
  history_bytes_ = 0;
  history_start_ = rv;
  snapshots_.clear();
  publish(std::move(tree), rv, now);
  return diff;
}

bool Store::apply(EventType type, ObjectPtr object, std::string* error, Clock::time_point now) {
  const bool applied = applyLocked(type, std::move(object), error, now);
  if (applied) notify();
  return applied;
}

bool Store::applyLocked(EventType type, ObjectPtr object, std::string* error,
                        Clock::time_point now) {
  const auto fail = [error](std::string m) {
    if (error != nullptr) *error = std::move(m);
    return false;
  };
  std::lock_guard lock(mu_);
  const uint64_t rv = object->resource_version;
  if (rv <= current_->resource_version) {
    return fail("event resourceVersion " + std::to_string(rv) + " does not advance the store (at " +
                std::to_string(current_->resource_version) + ")");
  }
  const BTree& tree = current_->objects;
  ObjectPtr previous = tree.find(object->key);
  if (type == EventType::kAdded && previous)
    type = EventType::kModified;  // a relist raced the watch
  if (type == EventType::kModified && !previous) type = EventType::kAdded;
  if (type == EventType::kDeleted && !previous)
    return fail("DELETED for " + object->key + ", which is not cached");
  BTree next = type == EventType::kDeleted ? tree.erase(object->key) : tree.upsert(object);
  if (previous) object_bytes_ -= previous->bytes.size();
  if (type != EventType::kDeleted) object_bytes_ += object->bytes.size();
  appendHistory(std::make_shared<Event>(Event{type, std::move(object), std::move(previous), rv}),
                now);
  publish(std::move(next), rv, now);
  trim(now);
  return true;
}

void Store::bookmark(uint64_t rv, Clock::time_point now) {
  {
    std::lock_guard lock(mu_);
    if (rv <= current_->resource_version) return;
    // Nothing changed up to rv: the same objects, now known current at rv.
    publish(current_->objects, rv, now);
    trim(now);
  }
  notify();
}

void Store::clear() {
  {
    std::lock_guard lock(mu_);
    current_ = std::make_shared<Snapshot>();
    snapshots_.clear();
    history_.clear();
    history_bytes_ = 0;
    object_bytes_ = 0;
    history_start_ = UINT64_MAX;  // nothing can be resumed from
  }
  notify();
}

SnapshotPtr Store::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

SnapshotPtr Store::snapshotAt(uint64_t rv) const {
  std::lock_guard lock(mu_);
  if (rv > current_->resource_version) return nullptr;
  auto it = snapshots_.upper_bound(rv);
  if (it == snapshots_.begin()) return nullptr;
  --it;  // the newest snapshot at or before rv: valid for rv since nothing happened in between
  return it->second;
}

std::optional<std::vector<EventPtr>> Store::eventsSince(uint64_t rv) const {
  std::vector<EventPtr> out;
  if (!eventsAfter(rv, SIZE_MAX, out)) return std::nullopt;
  return out;
}

bool Store::eventsAfter(uint64_t rv, size_t max, std::vector<EventPtr>& out,
                        uint64_t* current) const {
  std::lock_guard lock(mu_);
  if (rv < history_start_) return false;
  if (current != nullptr) *current = current_->resource_version;
  auto it = std::lower_bound(history_.begin(), history_.end(), rv,
                             [](const std::pair<EventPtr, Clock::time_point>& e, uint64_t v) {
                               return e.first->resource_version <= v;
                             });
  for (; it != history_.end() && max > 0; ++it, --max) out.push_back(it->first);
  return true;
}

uint64_t Store::oldestResourceVersion() const {
  std::lock_guard lock(mu_);
  return history_start_;
}

Store::Stats Store::stats() const {
  std::lock_guard lock(mu_);
  return {
      current_->objects.size(),   snapshots_.size(), history_.size(), history_bytes_, object_bytes_,
      current_->resource_version, last_update_};
}

}  // namespace kcp::cache
