// What a worker knows about each client connection it owns, whatever its
// protocol: it can be asked to drain (graceful shutdown) and it is deleted
// by the worker on a later loop turn, never inside its own callbacks.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <memory>

#include "proxy/net/client_limits.h"
#include "proxy/ops/metrics.h"

namespace kcp::proxy {

class Session {
 public:
  virtual ~Session() = default;
  // Stop taking new requests, finish those in flight, then close.
  virtual void drain() = 0;
  // Requests in flight (for shutdown progress).
  virtual size_t activeRequests() const = 0;

  // The connection's place in its client's count, handed from the handshake
  // to the session it becomes.
  ClientConnectionCounter::Slot slot;
};

// Why a client connection's bufferevent reported `what`, for the log line
// of the session it closes.
inline const char* clientEventReason(short what) {
  return what & BEV_EVENT_EOF       ? "client closed the connection"
         : what & BEV_EVENT_TIMEOUT ? "timed out"
                                    : "connection error";
}

// The worker as its sessions see it.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual event_base* base() = 0;
  virtual Metrics::Shard& metrics() = 0;
  // Takes ownership of a new session (e.g. once a handshake picked the protocol).
  virtual void adopt(std::unique_ptr<Session> session) = 0;
  // Deletes `session` on a later loop turn. The session must not be used after.
  virtual void release(Session* session) = 0;
};

}  // namespace kcp::proxy
