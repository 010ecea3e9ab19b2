// A consistent read (resourceVersion unset) answered from the cache, as
// kube-apiserver answers it from its watch cache: learn upstream's current
// resourceVersion with a one-item LIST (a probe, shared: see ProbeRounds),
// wait until the cache has reached it, then serve from the cache. The cache
// only learns it has reached a resourceVersion from an event or bookmark at
// or after it, so a quiet resource gets there by a bookmark the reflector
// asks for (about a second); after --consistent-read-wait the request is
// forwarded instead, and for ten seconds the resource's consistent reads are
// forwarded straight away. When kube-apiserver cannot be asked (the probe
// fails, or gets no answer within the wait), the cache answers if it is at
// most --max-staleness stale (CachedResource::staleness); otherwise the
// request is forwarded and gets upstream's failure.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "proxy/handlers/deferred_handler.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

// A worker's probes, one at a time per resource: a probe answers every read
// that joined before it was sent (so each still learns a resourceVersion
// upstream reported after the read arrived: linearizable); a read joining
// while one is out waits for the next, sent when that one ends. A storm of
// consistent reads costs kube-apiserver a probe per round trip, not per read.
class ProbeRounds {
 public:
  struct Result {
    enum class Kind {
      kResourceVersion,  // upstream's current one, in resource_version
      kUnavailable,      // upstream failed (5xx, stream error): it cannot be asked
      kUnusable,         // any other answer, or our own failure: the request is forwarded
    } kind;
    uint64_t resource_version = 0;
  };
  class Waiter {
   public:
    // Noexcept in effect: called from upstream callbacks.
    virtual void onProbed(Result result) = 0;

   protected:
    ~Waiter() = default;
  };

  explicit ProbeRounds(UpstreamPool& pool);
  ~ProbeRounds();
  ProbeRounds(const ProbeRounds&) = delete;
  ProbeRounds& operator=(const ProbeRounds&) = delete;

  // `waiter` hears onProbed once, from `probe` (sent now, or when the probe
  // out for `resource` ends), unless it leaves first. Throws if it cannot send.
  void join(const std::shared_ptr<const CachedResource>& resource, RequestHead probe,
            Waiter* waiter);
  void leave(const CachedResource& resource, Waiter* waiter);

 private:
  class Round;  // one resource's probe out and its waiters
  UpstreamPool& pool_;
  std::map<const CachedResource*, std::unique_ptr<Round>> rounds_;
};

class ConsistentRead : public DeferredHandler, private ProbeRounds::Waiter {
 public:
  // Returns the handler that answers from the cache at (at least) `rv`, or
  // null when the cache cannot answer after all.
  using Serve = std::function<RequestHandlerPtr(uint64_t rv)>;
  using Forward = std::function<RequestHandlerPtr()>;

  // Joins `rounds` with `probe` (a one-item LIST of the resource).
  // `max_staleness` zero: never served without upstream's resourceVersion.
  ConsistentRead(event_base* base, ProbeRounds& rounds, RequestHead probe,
                 std::shared_ptr<const CachedResource> resource, std::chrono::milliseconds wait,
                 std::chrono::milliseconds max_staleness, Serve serve, Forward forward);
  ~ConsistentRead() override;

 private:
  void onProbed(ProbeRounds::Result result) override;
  static void onPoll(evutil_socket_t, short, void* self) noexcept;
  void check();
  void answer(RequestHandlerPtr handler);
  void forward();
  void upstreamUnavailable();
  void abandon() override;
  // An exception before the decision (a handler's constructor, the probe's
  // parsing): reported, and the request forwarded instead, once. If that
  // fails too (or the decided handler failed) the request stays unanswered
  // until its client leaves: this handler cannot reach its stream to reset it.
  void recover(const char* context) noexcept;

  ProbeRounds& rounds_;
  const std::shared_ptr<const CachedResource> resource_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::milliseconds max_staleness_;
  Serve serve_;
  Forward forward_;
  bool probing_ = false;  // in a round, its probe not yet answered
  uint64_t upstream_rv_ = 0;
  event* poll_ = nullptr;
  bool decided_ = false;     // a handler was handed the exchange: nothing to recover to
  bool recovering_ = false;  // recover() forwards only once
};

}  // namespace kcp::proxy
