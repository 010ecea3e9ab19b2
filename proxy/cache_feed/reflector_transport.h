// The cache's reflectors and discovery reach kube-apiserver through this:
// cache::ReflectorTransport over the proxy's own upstream pool (whole-body
// GETs, watch streams split into JSON lines or protobuf frames, timers), on
// the cache's loop. Completion callbacks run on a later loop turn, so a
// reflector may start its next request from them.
#pragma once

#include <event2/event.h>

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "cache/reflector.h"
#include "proxy/auth/proxy_credentials.h"
#include "proxy/net/event_loop.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/ops/metrics.h"

namespace kcp::proxy {

// etcd refuses values over 1.5 MiB by default; kube-apiserver's own limit on a request is 3 MiB.
inline constexpr size_t kMaxWatchFrame = 64 << 20;

class ReflectorUpstream : public cache::ReflectorTransport {
 public:
  ReflectorUpstream(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials,
                    cache::Encoding encoding = cache::Encoding::kJson)
      : base_(base), pool_(pool), credentials_(credentials), encoding_(encoding) {}
  ~ReflectorUpstream() override {
    exchanges_.clear();
    timers_.clear();
  }

  void get(const std::string& path, std::function<void(int, std::string)> done) override {
    get(path, "", std::move(done));
  }
  // With an Accept header of the caller's (aggregated discovery).
  void get(const std::string& path, const std::string& accept,
           std::function<void(int, std::string)> done) {
    auto ex = std::make_unique<Fetch>(
        *this, nullptr,
        [done = std::move(done)](int status, std::string body) { done(status, std::move(body)); });
    start(std::move(ex), path, accept);
  }

  void watch(const std::string& path, std::function<void(std::string_view)> on_event,
             std::function<void(int, std::string)> on_end) override {
    cancelWatch();
    auto ex = std::make_unique<Fetch>(*this, std::move(on_event), std::move(on_end));
    watch_ = ex.get();
    start(std::move(ex), path);
  }

  void cancelWatch() override {
    if (watch_ != nullptr) {
      watch_->cancel();
      watch_ = nullptr;
    }
  }

  void after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    auto timer = std::make_unique<Timer>();
    Timer* raw = timer.get();
    raw->transport = this;
    raw->fn = std::move(fn);
    raw->ev = evtimer_new(base_, onTimer, raw);
    const timeval tv = timevalOf(delay);
    if (raw->ev == nullptr || evtimer_add(raw->ev, &tv) != 0) {
      // `fn` (e.g. a reflector's retry) will not run: reported, not silent.
      reportInternalError(Metrics::InternalError::kLibevent, "cache timer",
                          "evtimer_new or evtimer_add failed");
      return;  // ~Timer frees ev
    }
    timers_.push_back(std::move(timer));
  }

 private:
  // One request: a whole body (get) or a stream of events (watch): JSON
  // lines, or protobuf frames after a 4-byte big-endian length.
  class Fetch : public UpstreamStreamHandler {
   public:
    Fetch(ReflectorUpstream& t, std::function<void(std::string_view)> on_line,
          std::function<void(int, std::string)> on_end)
        : t_(t),
          on_line_(std::move(on_line)),
          on_end_(std::move(on_end)),
          length_prefixed_(t.encoding_ == cache::Encoding::kProtobuf) {}
    ~Fetch() override {
      if (stream_ != nullptr) stream_->cancel();
    }
    void begin(UpstreamStream* s) { stream_ = s; }
    void cancel() {
      cancelled_ = true;
      if (stream_ != nullptr) stream_->cancel();
      stream_ = nullptr;
      t_.finish(this, nullptr);
    }
    void onUpstreamResponse(const ResponseHead& head, bool) override { status_ = head.status; }
    void onUpstreamData(const uint8_t* data, size_t len) override {
      body_.append(reinterpret_cast<const char*>(data), len);
      stream_->consume(len);
      if (on_line_ && status_ == 200) {
        size_t start = 0;
        while (!cancelled_) {
          std::string_view event;
          if (length_prefixed_) {
            if (body_.size() - start < 4) break;
            const auto* p = reinterpret_cast<const uint8_t*>(body_.data() + start);
            const size_t n = size_t(p[0]) << 24 | size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3];
            if (n > kMaxWatchFrame) {  // not a frame kube-apiserver would write: end the watch
              stream_->cancel();
              stream_ = nullptr;
              done(0, "protobuf watch frame of " + std::to_string(n) + " bytes");
              return;
            }
            if (body_.size() - start - 4 < n) break;
            event = std::string_view(body_.data() + start + 4, n);
            start += 4 + n;
          } else {
            const size_t nl = body_.find('\n', start);
            if (nl == std::string::npos) break;
            event = std::string_view(body_.data() + start, nl - start);
            start = nl + 1;
          }
          if (!event.empty()) on_line_(event);  // may cancel this exchange
        }
        if (!cancelled_) body_.erase(0, start);
      }
    }
    void onUpstreamComplete() override {
      stream_ = nullptr;
      done(status_, std::move(body_));
    }
    void onUpstreamError(const std::string& reason) override {
      stream_ = nullptr;
      done(0, reason);
    }
    size_t requestBodyReady(bool* eof) override {
      *eof = true;
      return 0;
    }
    void pullRequestBody(evbuffer*, size_t) override {}

   private:
    void done(int status, std::string body) {
      if (cancelled_) return;
      auto cb = std::move(on_end_);
      t_.finish(this, [cb = std::move(cb), status, body = std::move(body)]() mutable {
        cb(status, std::move(body));
      });
    }
    ReflectorUpstream& t_;
    std::function<void(std::string_view)> on_line_;
    std::function<void(int, std::string)> on_end_;
    UpstreamStream* stream_ = nullptr;
    int status_ = 0;
    std::string body_;
    bool cancelled_ = false;
    bool length_prefixed_;
  };

  void start(std::unique_ptr<Fetch> ex, const std::string& path, const std::string& accept = "") {
    RequestHead head;
    head.method = "GET";
    head.path = path;
    head.end_stream = true;
    // Protobuf with JSON as the fallback: custom resources answer in JSON,
    // which tells the reflector they have no protobuf form.
    head.headers = {{"accept", !accept.empty() ? accept
                               : encoding_ == cache::Encoding::kProtobuf
                                   ? "application/vnd.kubernetes.protobuf, application/json"
                                   : "application/json"},
                    {"user-agent", "kube-cache-proxy/reflector"}};
    credentials_.authorize(head);
    Fetch* raw = ex.get();
    exchanges_.push_back(std::move(ex));
    raw->begin(pool_.submit(std::move(head), raw));
  }

  // Ends an exchange: deleted on a later turn (it may be on the stack), and
  // its completion, if any, runs then.
  void finish(Fetch* ex, std::function<void()> then) {
    if (watch_ == ex) watch_ = nullptr;
    for (auto it = exchanges_.begin(); it != exchanges_.end(); ++it) {
      if (it->get() == ex) {
        std::shared_ptr<Fetch> dying(std::move(*it));
        exchanges_.erase(it);
        after(std::chrono::milliseconds(0), [dying, then = std::move(then)] {
          if (then) then();
        });
        return;
      }
    }
  }

  event_base* base_;
  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  cache::Encoding encoding_;
  std::list<std::unique_ptr<Fetch>> exchanges_;
  Fetch* watch_ = nullptr;
  struct Timer {
    ReflectorUpstream* transport;
    std::function<void()> fn;
    event* ev = nullptr;
    ~Timer() {
      if (ev != nullptr) event_free(ev);
    }
  };
  static void onTimer(evutil_socket_t, short, void* p) noexcept {
    auto* timer = static_cast<Timer*>(p);
    std::function<void()> fn = std::move(timer->fn);
    timer->transport->timers_.remove_if(
        [timer](const std::unique_ptr<Timer>& t) { return t.get() == timer; });
    try {
      fn();  // may schedule more timers or destroy exchanges
    } catch (...) {
      // What failed was a step of a reflector or of discovery (parsing, a
      // retry): reported; that step is lost.
      reportInternalError(Metrics::InternalError::kEventCallback, "cache timer");
    }
  }
  std::list<std::unique_ptr<Timer>> timers_;
};

}  // namespace kcp::proxy
