#include "proxy/handlers/consistent_read.h"

#include <new>

#include "cache/json_scan.h"
#include "cache/object.h"
#include "proxy/ops/metrics.h"

namespace kcp::proxy {
namespace {

constexpr size_t kMaxProbeBody = 16 << 20;  // one object, however large kube-apiserver allows
constexpr std::chrono::milliseconds kPollInterval{2};
// After a consistent read ran out of time, the next ones go straight upstream
// for a while rather than each waiting as long (e.g. bookmarks not coming).
constexpr std::chrono::seconds kForwardAfterMiss{10};

}  // namespace

ConsistentRead::ConsistentRead(event_base* base, UpstreamPool& pool, RequestHead probe,
                               const CachedResource& resource, std::chrono::milliseconds wait,
                               std::chrono::milliseconds max_staleness, Serve serve,
                               Forward forward)
    : resource_(resource),
      deadline_(std::chrono::steady_clock::now() + wait),
      max_staleness_(max_staleness),
      serve_(std::move(serve)),
      forward_(std::move(forward)),
      poll_(evtimer_new(base, onPoll, this)) {
  if (poll_ == nullptr) throw std::bad_alloc();
  // The probe gets as long as the whole wait (an unreachable upstream may not fail fast).
  const timeval tv = timevalOf(wait);
  if (evtimer_add(poll_, &tv) != 0) {
    event_free(poll_);  // no destructor runs for a constructor that throws
    throw std::bad_alloc();
  }
  try {
    probe_ = pool.submit(std::move(probe), this);
  } catch (...) {
    event_free(poll_);
    throw;
  }
  resource_.consistent_read_probes.fetch_add(1, std::memory_order_relaxed);
}

ConsistentRead::~ConsistentRead() {
  if (probe_ != nullptr) probe_->cancel();
  event_free(poll_);
}

void ConsistentRead::forward() {
  resource_.consistent_reads_forwarded.fetch_add(1, std::memory_order_relaxed);
  answer(forward_());
}

void ConsistentRead::answer(RequestHandlerPtr handler) {
  abandon();
  decided_ = true;
  decide(std::move(handler));
}

void ConsistentRead::abandon() {
  if (probe_ != nullptr) probe_->cancel();
  probe_ = nullptr;
  evtimer_del(poll_);
}

void ConsistentRead::check() {
  const uint64_t cache_rv = resource_.store->current()->resource_version;
  if (cache_rv >= upstream_rv_) {
    if (auto handler = serve_(upstream_rv_)) {
      resource_.consistent_reads_from_cache.fetch_add(1, std::memory_order_relaxed);
      answer(std::move(handler));
      return;
    }
  } else if (std::chrono::steady_clock::now() < deadline_) {
    // A quiet resource only shows it has caught up in a bookmark: ask for one
    // (the reflector asks kube-apiserver once for all who are waiting).
    if (resource_.request_progress) resource_.request_progress();
    const timeval tv = timevalOf(kPollInterval);
    if (evtimer_add(poll_, &tv) == 0) return;
    // Nothing would wake us: forward now.
    reportInternalError(Metrics::InternalError::kLibevent, "consistent read poll",
                        "evtimer_add failed");
  } else {
    resource_.consistent_reads_forwarded_until.store(
        (std::chrono::steady_clock::now() + kForwardAfterMiss).time_since_epoch().count());
  }
  forward();
}

void ConsistentRead::upstreamUnavailable() {
  if (max_staleness_.count() > 0 &&
      resource_.staleness(std::chrono::steady_clock::now()) <= max_staleness_) {
    if (auto handler = serve_(resource_.store->current()->resource_version)) {
      resource_.consistent_reads_stale.fetch_add(1, std::memory_order_relaxed);
      answer(std::move(handler));
      return;
    }
  }
  forward();
}

void ConsistentRead::recover(const char* context) noexcept {
  reportInternalError(Metrics::InternalError::kEventCallback, context);
  if (closed() || decided_ || recovering_) return;
  recovering_ = true;
  try {
    forward();
  } catch (...) {
    reportInternalError(Metrics::InternalError::kEventCallback,
                        "consistent read: forwarding after an internal error");
  }
}

// Each way in (a libevent timer, the probe's UpstreamStreamHandler calls)
// catches: once the probe has ended, nobody else would.
void ConsistentRead::onPoll(evutil_socket_t, short, void* self) noexcept {
  auto* read = static_cast<ConsistentRead*>(self);
  try {
    if (read->probe_ != nullptr) {
      read->upstreamUnavailable();  // the probe did not answer in time
    } else {
      read->check();
    }
  } catch (...) {
    read->recover("consistent read poll");
  }
}

void ConsistentRead::onUpstreamResponse(const ResponseHead& head, bool) {
  probe_status_ = head.status;
}

void ConsistentRead::onUpstreamData(const uint8_t* data, size_t len) {
  try {
    if (probe_body_.size() + len > kMaxProbeBody) {
      forward();
      return;
    }
    probe_body_.append(reinterpret_cast<const char*>(data), len);
    probe_->consume(len);
  } catch (...) {
    recover("consistent read probe data");
  }
}

void ConsistentRead::onUpstreamComplete() {
  probe_ = nullptr;
  if (closed()) return;
  try {
    if (probe_status_ >= 500) {
      upstreamUnavailable();
      return;
    }
    // Any other failure of the probe is left to the real request: forwarded,
    // it gets kube-apiserver's own answer.
    const auto page =
        probe_status_ == 200 ? cache::scanJsonList(probe_body_, nullptr) : std::nullopt;
    if (!page || !cache::parseResourceVersion(page->resource_version, upstream_rv_)) {
      forward();
      return;
    }
    probe_body_.clear();
    resource_.noteUpstreamResourceVersion(upstream_rv_);
    check();
  } catch (...) {
    recover("consistent read probe");
  }
}

void ConsistentRead::onUpstreamError(const std::string&) {
  probe_ = nullptr;
  if (closed()) return;
  try {
    upstreamUnavailable();
  } catch (...) {
    recover("consistent read probe failure");
  }
}

size_t ConsistentRead::requestBodyReady(bool* eof) {
  *eof = true;
  return 0;
}

}  // namespace kcp::proxy
