#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

#include "config/kubeconfig.h"
#include "config/log.h"
#include "proxy/net/client_handshake.h"

namespace kcp::proxy {

sockaddr_storage parseListenAddress(const std::string& address, socklen_t* len) {
  sockaddr_storage ss{};
  std::string host, port;
  if (address.starts_with("[")) {
    const auto close = address.find("]:");
    if (close == std::string::npos) throw config::ConfigError("bad listen address " + address);
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
      throw config::ConfigError("listen address " + address + " has no port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    throw config::ConfigError("bad port in " + address);
  if (host.empty() || host == "0.0.0.0") host = host.empty() ? "0.0.0.0" : host;
  if (host == "localhost") host = "127.0.0.1";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(uint16_t(p));
    *len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(uint16_t(p));
    *len = sizeof(sockaddr_in6);
  } else {
    throw config::ConfigError("listen address " + address +
                              ": host must be an IP address or localhost");
  }
  return ss;
}

bool isLoopbackAddress(const std::string& address) {
  socklen_t len = 0;
  const sockaddr_storage ss = parseListenAddress(address, &len);
  if (ss.ss_family == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
  }
  return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

Worker::Worker(std::string name, std::vector<ListenSpec> listens, ClientLimits limits,
               Metrics::Shard& metrics, RouterFactory make_router)
    : name_(std::move(name)),
      listens_(std::move(listens)),
      limits_(limits),
      metrics_(metrics),
      base_(event_base_new()),
      make_router_(std::move(make_router)),
      shutdown_ev_(base_ ? event_new(base_.get(), -1, 0, onShutdownCb, this) : nullptr),
      reap_ev_(base_ ? event_new(base_.get(), -1, 0, onReapCb, this) : nullptr) {
  if (base_ == nullptr || shutdown_ev_ == nullptr || reap_ev_ == nullptr) {
    if (shutdown_ev_ != nullptr) event_free(shutdown_ev_);
    if (reap_ev_ != nullptr) event_free(reap_ev_);
    throw std::runtime_error("worker " + name_ + ": cannot create its event loop (libevent)");
  }
  router_ = make_router_(*this);
}

Worker::~Worker() {
  join();
  for (auto& l : listeners_) {
    if (l->listener != nullptr) evconnlistener_free(l->listener);
  }
  sessions_.clear();
  released_.clear();
  router_.reset();
  event_free(shutdown_ev_);
  event_free(reap_ev_);
  if (drain_tick_ev_ != nullptr) event_free(drain_tick_ev_);
}

void Worker::bindListeners() {
  for (const auto& spec : listens_) {
    socklen_t len = 0;
    sockaddr_storage ss = parseListenAddress(spec.address, &len);
    auto l = std::make_unique<Listener>(Listener{nullptr, spec.ssl_ctx, this});
    l->listener = evconnlistener_new_bind(
        base_.get(), onAccept, l.get(),
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
        1024, reinterpret_cast<sockaddr*>(&ss), int(len));
    if (l->listener == nullptr) {
      throw config::ConfigError("cannot listen on " + spec.address + ": " + std::strerror(errno));
    }
    listeners_.push_back(std::move(l));
  }
}

void Worker::start() {
  bindListeners();
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  event_base_dispatch(base_.get());
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::requestShutdown(std::chrono::milliseconds grace) {
  grace_ms_ = grace.count();
  event_active(shutdown_ev_, 0, 0);  // libevent is thread-safe after evthread_use_pthreads()
}

void Worker::onShutdownCb(evutil_socket_t, short, void* arg) noexcept {
  auto& w = *static_cast<Worker*>(arg);
  try {
    for (auto& l : w.listeners_) {
      if (l->listener != nullptr) {
        evconnlistener_free(l->listener);
        l->listener = nullptr;
      }
    }
    w.drain_deadline_ =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(w.grace_ms_.load());
    std::vector<Session*> all;
    for (auto& [s, _] : w.sessions_) all.push_back(s);
    for (Session* s : all) s->drain();
    w.drain_tick_ev_ = event_new(w.base(), -1, EV_PERSIST, onDrainTickCb, &w);
    const timeval tick{0, 100000};
    if (w.drain_tick_ev_ == nullptr || event_add(w.drain_tick_ev_, &tick) != 0) {
      // Without the tick nothing would end the loop: end it now.
      reportInternalError(Metrics::InternalError::kLibevent, "worker shutdown",
                          "cannot arm the drain tick");
      event_base_loopexit(w.base(), nullptr);
      return;
    }
    w.drainTick();
  } catch (...) {
    // A graceful shutdown that failed is still a shutdown.
    reportInternalError(Metrics::InternalError::kEventCallback, "worker shutdown");
    event_base_loopexit(w.base(), nullptr);
  }
}

void Worker::onDrainTickCb(evutil_socket_t, short, void* arg) noexcept {
  auto& w = *static_cast<Worker*>(arg);
  try {
    w.drainTick();
  } catch (...) {
    reportInternalError(Metrics::InternalError::kEventCallback, "worker drain");
    event_base_loopexit(w.base(), nullptr);
  }
}

void Worker::drainTick() {
  size_t active = 0;
  for (auto& [s, _] : sessions_) active += s->activeRequests();
  if (active == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
    if (active > 0)
      log::info("grace period over, closing requests still in flight",
                {{"worker", name_}, {"requests", std::to_string(active)}});
    event_base_loopexit(base_.get(), nullptr);
  }
}

void Worker::adopt(std::unique_ptr<Session> session) {
  Session* raw = session.get();
  sessions_[raw] = std::move(session);
}

void Worker::release(Session* session) {
  const auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  released_.push_back(std::move(it->second));
  sessions_.erase(it);
  event_active(reap_ev_, 0, 0);
}

void Worker::onReapCb(evutil_socket_t, short, void* arg) noexcept {
  // Cannot throw: a move, and destructors (which catch what their handlers throw).
  auto& w = *static_cast<Worker*>(arg);
  auto released = std::move(w.released_);
  released.clear();  // destructors may release more; those land in a fresh released_
}

void Worker::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int,
                      void* arg) noexcept {
  auto& l = *static_cast<Listener*>(arg);
  Worker& w = *l.worker;
  bool handed_over = false;  // once the handshake exists it owns fd
  try {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr->sa_family == AF_INET) {
      const auto* a = reinterpret_cast<sockaddr_in*>(addr);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (addr->sa_family == AF_INET6) {
      const auto* a = reinterpret_cast<sockaddr_in6*>(addr);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    std::string peer;  // built by appending: GCC 12 warns falsely on "[" + std::string
    if (addr->sa_family == AF_INET6) peer += '[';
    peer += host;
    if (addr->sa_family == AF_INET6) peer += ']';
    peer += ':';
    peer += std::to_string(port);
    ClientConnectionCounter::Slot slot;
    if (w.limits_.connections != nullptr && !(slot = w.limits_.connections->acquire(host))) {
      w.metrics_.recordRejection("connections_per_client");
      log::verbose(2, "client connection refused: too many from one address", {{"client", peer}});
      evutil_closesocket(fd);
      return;
    }
    auto hs = std::make_unique<ClientHandshake>(w, *w.router_, w.limits_, l.ssl_ctx, fd, peer);
    handed_over = true;
    hs->slot = std::move(slot);
    ClientHandshake* raw = hs.get();
    w.adopt(std::move(hs));
    raw->start();
  } catch (...) {
    reportInternalError(Metrics::InternalError::kEventCallback, "accept");
    if (!handed_over) evutil_closesocket(fd);
  }
}

}  // namespace kcp::proxy
