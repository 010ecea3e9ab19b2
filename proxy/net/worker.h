// One event loop on one thread, with its own listeners (SO_REUSEPORT, so the
// kernel spreads connections over workers), its client sessions and its
// router (and so its own upstream connections). Nothing mutable is shared
// with other workers; the only cross-thread call is requestShutdown().
#pragma once

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/net/exchange.h"
#include "proxy/net/session.h"
#include "proxy/ops/metrics.h"

namespace kcp::proxy {

struct EventBaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;

// A listening address and how connections on it are served.
struct ListenSpec {
  std::string address;         // "host:port"
  SSL_CTX* ssl_ctx = nullptr;  // null: cleartext
};

// Parses "host:port" / "[v6]:port" into a sockaddr; throws config::ConfigError.
sockaddr_storage parseListenAddress(const std::string& address, socklen_t* len);
bool isLoopbackAddress(const std::string& address);

class Worker : public SessionHost {
 public:
  using RouterFactory = std::function<std::unique_ptr<Router>(Worker&)>;

  Worker(std::string name, std::vector<ListenSpec> listens, ClientLimits limits,
         Metrics::Shard& metrics, RouterFactory make_router);
  ~Worker() override;

  // Binds the listeners (throws on failure, e.g. address in use) on the
  // calling thread, then runs the loop on a new thread.
  void start();
  // Runs the loop on the calling thread until shutdown (for the admin loop).
  void bindListeners();
  void run();
  // Thread-safe: stop accepting, drain sessions, and end the loop once no
  // request is in flight or `grace` has passed.
  void requestShutdown(std::chrono::milliseconds grace);
  void join();

  // SessionHost (loop thread only)
  event_base* base() override { return base_.get(); }
  Metrics::Shard& metrics() override { return metrics_; }
  void adopt(std::unique_ptr<Session> session) override;
  void release(Session* session) override;

  Router& router() { return *router_; }
  const std::string& name() const { return name_; }

 private:
  // libevent callbacks. An exception is reported (reportInternalError): in
  // accept it drops that connection; during shutdown it ends the loop.
  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len,
                       void* arg) noexcept;
  static void onShutdownCb(evutil_socket_t, short, void* arg) noexcept;
  static void onReapCb(evutil_socket_t, short, void* arg) noexcept;
  static void onDrainTickCb(evutil_socket_t, short, void* arg) noexcept;
  void drainTick();

  std::string name_;
  std::vector<ListenSpec> listens_;
  ClientLimits limits_;
  Metrics::Shard& metrics_;
  EventBasePtr base_;
  std::unique_ptr<Router> router_;
  RouterFactory make_router_;
  struct Listener {
    evconnlistener* listener;
    SSL_CTX* ssl_ctx;
    Worker* worker;
  };
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<Session*, std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<Session>> released_;
  event* shutdown_ev_;
  event* reap_ev_;
  event* drain_tick_ev_ = nullptr;
  std::atomic<int64_t> grace_ms_{0};
  std::chrono::steady_clock::time_point drain_deadline_;
  std::thread thread_;
};

}  // namespace kcp::proxy
