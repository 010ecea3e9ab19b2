// A consistent read (resourceVersion unset) answered from the cache, as
// kube-apiserver answers it from its watch cache: learn upstream's current
// resourceVersion with a one-item LIST, wait until the cache has reached it,
// then serve from the cache. The cache only learns it has reached a
// resourceVersion from an event or bookmark at or after it, so a quiet
// resource gets there by a bookmark the reflector asks for (about a second);
// after --consistent-read-wait the request is forwarded instead, and for ten
// seconds the resource's consistent reads are forwarded straight away.
// When kube-apiserver cannot be asked (the probe fails, or gets no answer
// within the wait), the cache answers if it is at most --max-staleness stale
// (CachedResource::staleness); otherwise the request is forwarded and gets
// upstream's failure.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <string>

#include "proxy/handlers/deferred_handler.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/serving/cached_resource.h"

namespace kcp::proxy {

class ConsistentRead : public DeferredHandler, public UpstreamStreamHandler {
 public:
  // Returns the handler that answers from the cache at (at least) `rv`, or
  // null when the cache cannot answer after all.
  using Serve = std::function<RequestHandlerPtr(uint64_t rv)>;
  using Forward = std::function<RequestHandlerPtr()>;

  // Sends `probe` (a one-item LIST of the resource) on `pool`.
  // `max_staleness` zero: never served without upstream's resourceVersion.
  ConsistentRead(event_base* base, UpstreamPool& pool, RequestHead probe,
                 const CachedResource& resource, std::chrono::milliseconds wait,
                 std::chrono::milliseconds max_staleness, Serve serve, Forward forward);
  ~ConsistentRead() override;

  // UpstreamStreamHandler: the probe.
  void onUpstreamResponse(const ResponseHead& head, bool end_stream) override;
  void onUpstreamData(const uint8_t* data, size_t len) override;
  void onUpstreamComplete() override;
  void onUpstreamError(const std::string& reason) override;
  size_t requestBodyReady(bool* eof) override;
  void pullRequestBody(evbuffer*, size_t) override {}

 private:
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

  const CachedResource& resource_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::milliseconds max_staleness_;
  Serve serve_;
  Forward forward_;
  UpstreamStream* probe_ = nullptr;
  int probe_status_ = 0;
  std::string probe_body_;
  uint64_t upstream_rv_ = 0;
  event* poll_ = nullptr;
  bool decided_ = false;     // a handler was handed the exchange: nothing to recover to
  bool recovering_ = false;  // recover() forwards only once
};

}  // namespace kcp::proxy
