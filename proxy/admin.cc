#include "proxy/admin.h"

#include <stdexcept>

#include "config/log.h"
#include "proxy/net/static_response.h"

namespace kcp::proxy {
namespace {

constexpr timeval kProbeInterval{2, 0};
constexpr int kProbeTimeoutTicks = 3;  // intervals without an answer before giving up on a probe

}  // namespace

void UpstreamHealth::set(bool ready, std::string reason) {
  std::lock_guard lock(mu_);
  if (ready != ready_.load()) {
    if (ready) {
      log::info("upstream is ready");
    } else {
      log::warning("upstream is not ready", {{"reason", reason}});
    }
  }
  reason_ = std::move(reason);
  ready_ = ready;
}

std::string UpstreamHealth::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

// GET /readyz upstream every probe interval, one at a time.
class AdminRouter::Probe : public UpstreamStreamHandler {
 public:
  Probe(event_base* base, UpstreamPool& pool, ProxyCredentials& credentials, UpstreamHealth& health)
      : pool_(pool),
        credentials_(credentials),
        health_(health),
        timer_(event_new(base, -1, EV_PERSIST, onTick, this)) {
    // At start-up: main() reports it.
    if (timer_ == nullptr || event_add(timer_, &kProbeInterval) != 0) {
      if (timer_ != nullptr) event_free(timer_);
      throw std::runtime_error("readiness probe: cannot arm its timer (libevent)");
    }
    event_active(timer_, 0, 0);
  }
  ~Probe() override {
    if (stream_ != nullptr) stream_->cancel();
    event_free(timer_);
  }

  void onUpstreamResponse(const ResponseHead& head, bool) override { status_ = head.status; }
  void onUpstreamData(const uint8_t*, size_t len) override { stream_->consume(len); }
  void onUpstreamComplete() override {
    stream_ = nullptr;
    health_.set(status_ == 200,
                status_ == 200 ? "" : "upstream /readyz answered " + std::to_string(status_));
  }
  void onUpstreamError(const std::string& reason) override {
    stream_ = nullptr;
    health_.set(false, reason);
  }
  size_t requestBodyReady(bool* eof) override {
    *eof = true;
    return 0;
  }
  void pullRequestBody(evbuffer*, size_t) override {}

 private:
  static void onTick(evutil_socket_t, short, void* p) noexcept {
    try {
      static_cast<Probe*>(p)->tick();
    } catch (...) {
      // This probe is lost; the next tick sends another.
      reportInternalError(Metrics::InternalError::kEventCallback, "readiness probe");
    }
  }
  void tick() {
    if (stream_ != nullptr) {
      if (++waited_ < kProbeTimeoutTicks) return;
      stream_->cancel();
      stream_ = nullptr;
      health_.set(false, "upstream /readyz did not answer in time");
    }
    waited_ = 0;
    status_ = 0;
    RequestHead head;
    head.method = "GET";
    head.path = "/readyz";
    head.end_stream = true;
    credentials_.authorize(head);
    stream_ = pool_.submit(std::move(head), this);
  }

  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  UpstreamHealth& health_;
  event* timer_;
  UpstreamStream* stream_ = nullptr;
  int status_ = 0;
  int waited_ = 0;
};

AdminRouter::AdminRouter(event_base* base, const UpstreamTarget& target, SSL_CTX* proxy_ctx,
                         ProxyCredentials& credentials, std::chrono::milliseconds dial_timeout,
                         Metrics& metrics, UpstreamHealth& health)
    : metrics_(metrics),
      health_(health),
      pool_(base, target, proxy_ctx, dial_timeout, std::chrono::milliseconds(0), "readiness-probe"),
      probe_(std::make_unique<Probe>(base, pool_, credentials, health)) {}

AdminRouter::~AdminRouter() = default;

RequestHandlerPtr AdminRouter::readyz(DownstreamStream& stream) const {
  const auto answer = [&stream](int status, std::string text) {
    if (text != "ok") text += "\n";  // kube-apiserver's "ok" has no newline
    return StaticResponse::send(stream, status, "text/plain; charset=utf-8", std::move(text));
  };
  if (shutting_down_) return answer(503, "shutting down");
  if (cache_ != nullptr && !cache_->synced())
    return answer(503, "cache not synced: " + cache_->notSyncedReason());
  if (cache_ != nullptr && max_staleness_.count() > 0) {
    if (const auto stalest = cache_->stalest()) {
      const auto secs = [](auto d) {
        return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
      };
      if (stalest->second > max_staleness_) {
        return answer(503, "cache stale: " + stalest->first +
                               " may have missed upstream's changes for " + secs(stalest->second) +
                               " (--max-staleness " + secs(max_staleness_) + ")");
      }
      // Within --max-staleness the cache is what clients are served from.
      if (!health_.ready())
        return answer(200,
                      "ok (serving from the cache; upstream not ready: " + health_.reason() + ")");
      return answer(200, "ok");
    }
  }
  if (!health_.ready()) return answer(503, "upstream not ready: " + health_.reason());
  return answer(200, "ok");
}

RequestHandlerPtr AdminRouter::route(const RequestHead& head, DownstreamStream& stream) {
  const std::string path = head.path.substr(0, head.path.find('?'));
  if (head.method != "GET" && head.method != "HEAD") {
    return StaticResponse::sendStatus(
        stream, {405, "MethodNotAllowed", "the admin endpoints only answer GET", {}});
  }
  if (path == "/healthz" || path == "/livez")
    return StaticResponse::send(stream, 200, "text/plain; charset=utf-8", "ok");
  if (path == "/readyz") {
    return readyz(stream);
  }
  if (path == "/metrics") {
    return StaticResponse::send(stream, 200, "text/plain; version=0.0.4; charset=utf-8",
                                metrics_.render());
  }
  if (path.starts_with("/debug/cache/") && cache_ != nullptr && debug_dump_) {
    std::string body = cache_->debugList(path.substr(13));
    if (!body.empty())
      return StaticResponse::send(stream, 200, "application/json", std::move(body));
  }
  return StaticResponse::sendStatus(
      stream, {404, "NotFound", "the server could not find the requested resource", {}});
}

}  // namespace kcp::proxy
