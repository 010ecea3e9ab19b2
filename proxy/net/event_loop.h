// What the network side shares about libevent loops: how timers take a
// duration, and the output watermark above which a connection stops
// producing (sessions stop pulling response bodies, the upstream pool stops
// pulling request bodies) until the socket drains.
#pragma once

#include <sys/time.h>

#include <chrono>
#include <cstddef>

namespace kcp::proxy {

// A duration as libevent's timers take it.
inline timeval timevalOf(std::chrono::milliseconds d) {
  return {time_t(d.count() / 1000), suseconds_t((d.count() % 1000) * 1000)};
}

// Bytes queued in a connection's output beyond which nothing more is produced.
inline constexpr size_t kOutputHighWatermark = 256 << 10;

}  // namespace kcp::proxy
