// A WATCH answered from the cache, as kube-apiserver 1.37's watch cache
// answers it: optional initial ADDED events for a snapshot's objects (with
// the watch-list's closing BOOKMARK), then every later change from the
// store's event history, selected per watcher (an object leaving the
// selection is a DELETED, entering it an ADDED), bookmarks, and the end at
// timeoutSeconds. One watcher costs a position in the shared history and a
// chunk of output: events are pulled as the connection drains, and a watcher
// that falls behind the history's end is closed (its client resumes or
// relists, as with kube-apiserver's slow watchers). A watch-list is gzipped
// for clients that accept it, as kube-apiserver 1.37 does.
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "proxy/handlers/request_record.h"
#include "proxy/handlers/watch_feed.h"
#include "proxy/net/exchange.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"
#include "proxy/request/response_form.h"
#include "proxy/serving/cached_resource.h"
#include "proxy/serving/watch_plan.h"

namespace kcp::proxy {

class CachedWatch : public RequestHandler, public WatchFeed::Watcher {
 public:
  // Holds `resource` for as long as the watch lasts (it may go away upstream meanwhile).
  CachedWatch(std::shared_ptr<const CachedResource> resource, WatchPlan plan, ResponseForm form,
              WatchFeed& feed, event_base* base, const RequestHead& head, const RequestInfo& info,
              DownstreamStream& stream, Metrics::Shard& metrics);
  ~CachedWatch() override;

  void onRequestBody(const uint8_t*, size_t) override {}
  void onRequestComplete() override {}
  size_t responseBodyReady(bool* eof) override;
  void pullResponseBody(evbuffer* out, size_t n) override;
  void onDownstreamClosed() override {}
  void onStoreChanged() override;

 private:
  // libevent callbacks: an exception is reported and resets the stream.
  static void onDeadline(evutil_socket_t, short, void* self) noexcept;
  static void onBookmarkDue(evutil_socket_t, short, void* self) noexcept;
  void failed(const char* context) noexcept;
  // The constructor's work, once the buffer and timers exist.
  void start(const RequestHead& head);
  void compressStaged();
  void refill();
  void addObject(std::string_view type, const cache::ObjectPtr& object);
  void addBookmark(uint64_t rv, bool initial_events_end);
  void addEvent(const cache::Event& event);
  bool selected(const cache::ObjectPtr& object) const;
  void scheduleBookmark();
  void wake();

  std::shared_ptr<const CachedResource> held_;
  const CachedResource& resource_;  // *held_
  WatchPlan plan_;
  ResponseForm form_;
  bool protobuf_;
  WatchFeed& feed_;
  DownstreamStream& stream_;
  std::string type_meta_;  // JSON: put back in front of typed objects
  std::shared_ptr<const std::string>
      bookmark_template_;  // protobuf: see Reflector::bookmarkTemplate
  cache::BTree::Cursor initial_;
  bool initial_done_ = false;
  uint64_t position_;  // every event up to here has been staged
  uint64_t last_bookmark_ = 0;
  std::vector<cache::EventPtr> batch_;
  evbuffer* staged_;
  // A watch-list to a client that takes gzip: what goes out is staged_'s
  // bytes compressed, one gzip member per refill (kube-apiserver 1.37,
  // WatchListCompression: a member per flush).
  bool gzip_ = false;
  evbuffer* compressed_ = nullptr;
  event* deadline_;
  event* bookmark_timer_;
  std::chrono::steady_clock::time_point deadline_at_;
  bool bookmark_due_ = false;
  bool waiting_ = false;  // the session is waiting for resumeResponse
  bool done_ = false;
  RequestRecord record_;
};

}  // namespace kcp::proxy
