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

// One resource's probe out, the reads it answers, and the reads waiting for the next.
class ProbeRounds::Round : public UpstreamStreamHandler {
 public:
  Round(UpstreamPool& pool, std::shared_ptr<const CachedResource> resource)
      : pool_(pool), resource_(std::move(resource)) {}
  ~Round() override {
    if (stream_ != nullptr) stream_->cancel();
  }

  void join(RequestHead probe, Waiter* waiter) {
    if (stream_ != nullptr) {
      next_.push_back(waiter);
      next_probe_ = std::move(probe);
      return;
    }
    send(std::move(probe));
    out_.push_back(waiter);
  }
  void leave(Waiter* waiter) {
    for (auto* list : {&out_, &next_, &answering_}) std::erase(*list, waiter);
  }

  void onUpstreamResponse(const ResponseHead& head, bool) override { status_ = head.status; }
  void onUpstreamData(const uint8_t* data, size_t len) override {
    try {
      if (body_.size() + len > kMaxProbeBody) {
        stream_->cancel();
        finish({Result::Kind::kUnusable});
        return;
      }
      body_.append(reinterpret_cast<const char*>(data), len);
      stream_->consume(len);
    } catch (...) {
      reportInternalError(Metrics::InternalError::kEventCallback, "consistent read probe data");
      stream_->cancel();
      finish({Result::Kind::kUnusable});
    }
  }
  void onUpstreamComplete() override {
    // Any failure but upstream's own (ours included) is left to the real
    // request: forwarded, it gets kube-apiserver's own answer.
    Result result{status_ >= 500 ? Result::Kind::kUnavailable : Result::Kind::kUnusable};
    try {
      if (status_ < 500) {
        const auto page = status_ == 200 ? cache::scanJsonList(body_, nullptr) : std::nullopt;
        if (page && cache::parseResourceVersion(page->resource_version, result.resource_version)) {
          result.kind = Result::Kind::kResourceVersion;
          resource_->noteUpstreamResourceVersion(result.resource_version);
        }
      }
    } catch (...) {
      reportInternalError(Metrics::InternalError::kEventCallback, "consistent read probe");
    }
    finish(result);
  }
  void onUpstreamError(const std::string&) override { finish({Result::Kind::kUnavailable}); }
  size_t requestBodyReady(bool* eof) override {
    *eof = true;
    return 0;
  }
  void pullRequestBody(evbuffer*, size_t) override {}

 private:
  void send(RequestHead probe) {
    stream_ = pool_.submit(std::move(probe), this);
    resource_->consistent_read_probes.fetch_add(1, std::memory_order_relaxed);
  }
  // The probe out has ended (its stream is done or cancelled): its readers
  // hear `result`, and the next round's probe goes out.
  void finish(Result result) noexcept {
    stream_ = nullptr;
    status_ = 0;
    body_.clear();
    answering_.swap(out_);
    deliver(result);
    if (next_.empty()) return;
    out_.swap(next_);
    try {
      send(std::move(next_probe_));
    } catch (...) {
      reportInternalError(Metrics::InternalError::kEventCallback, "consistent read probe send");
      answering_.swap(out_);
      deliver({Result::Kind::kUnusable});
    }
  }
  // One reader at a time off the list: one that leaves meanwhile (its
  // exchange gone) is off it too.
  void deliver(Result result) noexcept {
    while (!answering_.empty()) {
      Waiter* w = answering_.back();
      answering_.pop_back();
      w->onProbed(result);
    }
  }

  UpstreamPool& pool_;
  const std::shared_ptr<const CachedResource> resource_;  // keeps the key's address taken
  UpstreamStream* stream_ = nullptr;
  int status_ = 0;
  std::string body_;
  std::vector<Waiter*> out_;        // joined before the probe out was sent
  std::vector<Waiter*> next_;       // joined after: the next round
  RequestHead next_probe_;          // the next round's probe, the latest joiner's
  std::vector<Waiter*> answering_;  // being told the result
};

ProbeRounds::ProbeRounds(UpstreamPool& pool) : pool_(pool) {}
ProbeRounds::~ProbeRounds() = default;

void ProbeRounds::join(const std::shared_ptr<const CachedResource>& resource, RequestHead probe,
                       Waiter* waiter) {
  auto& round = rounds_[resource.get()];
  if (!round) round = std::make_unique<Round>(pool_, resource);
  round->join(std::move(probe), waiter);
}

void ProbeRounds::leave(const CachedResource& resource, Waiter* waiter) {
  if (auto it = rounds_.find(&resource); it != rounds_.end()) it->second->leave(waiter);
}

ConsistentRead::ConsistentRead(event_base* base, ProbeRounds& rounds, RequestHead probe,
                               std::shared_ptr<const CachedResource> resource,
                               std::chrono::milliseconds wait,
                               std::chrono::milliseconds max_staleness, Serve serve,
                               Forward forward)
    : rounds_(rounds),
      resource_(std::move(resource)),
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
    rounds_.join(resource_, std::move(probe), this);
  } catch (...) {
    event_free(poll_);
    throw;
  }
  probing_ = true;
}

ConsistentRead::~ConsistentRead() {
  if (probing_) rounds_.leave(*resource_, this);
  event_free(poll_);
}

void ConsistentRead::forward() {
  resource_->consistent_reads_forwarded.fetch_add(1, std::memory_order_relaxed);
  answer(forward_());
}

void ConsistentRead::answer(RequestHandlerPtr handler) {
  abandon();
  decided_ = true;
  decide(std::move(handler));
}

void ConsistentRead::abandon() {
  if (probing_) rounds_.leave(*resource_, this);
  probing_ = false;
  evtimer_del(poll_);
}

void ConsistentRead::check() {
  const uint64_t cache_rv = resource_->store->current()->resource_version;
  if (cache_rv >= upstream_rv_) {
    if (auto handler = serve_(upstream_rv_)) {
      resource_->consistent_reads_from_cache.fetch_add(1, std::memory_order_relaxed);
      answer(std::move(handler));
      return;
    }
  } else if (std::chrono::steady_clock::now() < deadline_) {
    // A quiet resource only shows it has caught up in a bookmark: ask for one
    // (the reflector asks kube-apiserver once for all who are waiting).
    if (resource_->request_progress) resource_->request_progress();
    const timeval tv = timevalOf(kPollInterval);
    if (evtimer_add(poll_, &tv) == 0) return;
    // Nothing would wake us: forward now.
    reportInternalError(Metrics::InternalError::kLibevent, "consistent read poll",
                        "evtimer_add failed");
  } else {
    resource_->consistent_reads_forwarded_until.store(
        (std::chrono::steady_clock::now() + kForwardAfterMiss).time_since_epoch().count());
  }
  forward();
}

void ConsistentRead::upstreamUnavailable() {
  if (max_staleness_.count() > 0 &&
      resource_->staleness(std::chrono::steady_clock::now()) <= max_staleness_) {
    if (auto handler = serve_(resource_->store->current()->resource_version)) {
      resource_->consistent_reads_stale.fetch_add(1, std::memory_order_relaxed);
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

// Each way in (a libevent timer, the probe's answer) catches: nobody above would.
void ConsistentRead::onPoll(evutil_socket_t, short, void* self) noexcept {
  auto* read = static_cast<ConsistentRead*>(self);
  try {
    if (read->probing_) {
      read->abandon();  // the probe did not answer in time
      read->upstreamUnavailable();
    } else {
      read->check();
    }
  } catch (...) {
    read->recover("consistent read poll");
  }
}

void ConsistentRead::onProbed(ProbeRounds::Result result) {
  probing_ = false;
  if (closed()) return;
  try {
    switch (result.kind) {
      case ProbeRounds::Result::Kind::kResourceVersion:
        upstream_rv_ = result.resource_version;
        check();
        return;
      case ProbeRounds::Result::Kind::kUnavailable:
        upstreamUnavailable();
        return;
      case ProbeRounds::Result::Kind::kUnusable:
        forward();
        return;
    }
  } catch (...) {
    recover("consistent read probe");
  }
}

}  // namespace kcp::proxy
