// The whole HTTP/1.1 request path of a client connection: bytes from a
// socket into Http1Session (http-parser, limits, routing, response writing),
// with a router that answers every request with a small body.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "config/log.h"
#include "proxy/net/http1_session.h"
#include "proxy/net/static_response.h"

namespace {

using namespace kcp::proxy;

class OkRouter : public Router {
 public:
  RequestHandlerPtr route(const RequestHead& head, DownstreamStream& stream) override {
    return StaticResponse::send(stream, 200, "text/plain", head.method + " " + head.path);
  }
};

class Host : public SessionHost {
 public:
  Host() : base_(event_base_new()), shard_(metrics_.addShard()) {}
  ~Host() override {
    sessions_.clear();
    released_.clear();
    event_base_free(base_);
  }
  event_base* base() override { return base_; }
  Metrics::Shard& metrics() override { return shard_; }
  void adopt(std::unique_ptr<Session> s) override { sessions_[s.get()] = std::move(s); }
  void release(Session* s) override {
    auto it = sessions_.find(s);
    if (it == sessions_.end()) return;
    released_.push_back(std::move(it->second));
    sessions_.erase(it);
  }

 private:
  event_base* base_;
  Metrics metrics_;
  Metrics::Shard& shard_;
  std::unordered_map<Session*, std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<Session>> released_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = (kcp::log::configure(-1, kcp::log::Format::kText), true);
  (void)quiet;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 0;
  Host host;
  OkRouter router;
  ClientLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_header_count = 32;
  evutil_make_socket_nonblocking(fds[1]);
  bufferevent* bev = bufferevent_socket_new(host.base(), fds[0], BEV_OPT_CLOSE_ON_FREE);
  auto session = std::make_unique<Http1Session>(host, router, limits, bev,
                                                PeerInfo{"fuzz", false, "http/1.1"});
  Http1Session* raw = session.get();
  host.adopt(std::move(session));
  raw->start();
  if (size == 0) shutdown(fds[1], SHUT_WR);
  // Feed the input while the loop runs and responses are drained, then
  // half-close and let the session finish.
  char sink[65536];
  size_t off = 0;
  for (int idle = 0; idle < 64;) {
    if (off < size) {
      const ssize_t n = write(fds[1], data + off, size - off);
      if (n > 0) off += size_t(n);
      if (off == size) shutdown(fds[1], SHUT_WR);
    }
    event_base_loop(host.base(), EVLOOP_NONBLOCK);
    bool got = false;
    while (read(fds[1], sink, sizeof sink) > 0) got = true;
    idle = (got || off < size) ? 0 : idle + 1;
  }
  close(fds[1]);
  return 0;
}
