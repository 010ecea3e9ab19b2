// Every limit against a hostile or broken client, in one place (as Envoy's
// protocol_constraints.h): sizes, counts and timeouts, the connections per
// client address, and the answers kube-apiserver gives when one is passed.
// Sessions and the handshake enforce them; main maps the flags onto them.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "encoder/status.h"

namespace kcp::proxy {

// Connections open per client address, shared by every worker (a mutex held
// for one map update; never across I/O), bounded by
// --max-connections-per-client.
class ClientConnectionCounter {
 public:
  explicit ClientConnectionCounter(int64_t max_per_client) : max_(max_per_client) {}

  // One connection's place in the count; empty when refused. Move-only;
  // gives the place back when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept
        : counter_(std::exchange(o.counter_, nullptr)), address_(std::move(o.address_)) {}
    Slot& operator=(Slot&& o) noexcept {
      release();
      counter_ = std::exchange(o.counter_, nullptr);
      address_ = std::move(o.address_);
      return *this;
    }
    ~Slot() { release(); }
    explicit operator bool() const { return counter_ != nullptr; }

   private:
    friend class ClientConnectionCounter;
    Slot(ClientConnectionCounter* c, std::string address)
        : counter_(c), address_(std::move(address)) {}
    void release();
    ClientConnectionCounter* counter_ = nullptr;
    std::string address_;
  };

  // Thread-safe: a slot for one more connection from `address` (its IP), or
  // an empty one when that address already has the most allowed.
  Slot acquire(const std::string& address);

 private:
  const int64_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> open_;
};

// Limits applied to every client connection.
struct ClientLimits {
  int64_t max_header_bytes = 1 << 20;
  int64_t max_header_count = 256;
  uint32_t max_concurrent_streams = 250;
  // As kube-apiserver's http.Server: a connection with no request in
  // progress is closed after idle_timeout; an HTTP/1.1 request head must
  // arrive within header_timeout of its first byte (slowloris).
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(90)};
  std::chrono::milliseconds header_timeout{std::chrono::seconds(32)};
  std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(10)};
  // kube-apiserver refuses request bodies over 3 MiB with a 413.
  int64_t max_request_body_bytes = 3 << 20;
  // HTTP/2 floods (nghttp2's rapid-reset token bucket and CONTINUATION cap).
  uint64_t http2_reset_burst = 1000, http2_resets_per_second = 33;
  size_t http2_max_continuations = 8;
  ClientConnectionCounter* connections = nullptr;  // null: no per-client limit
};

// kube-apiserver's answer to a request body over `limit` bytes.
inline encoder::Status requestEntityTooLarge(int64_t limit) {
  return {413,
          "RequestEntityTooLarge",
          "Request entity too large: limit is " + std::to_string(limit),
          {}};
}

}  // namespace kcp::proxy
