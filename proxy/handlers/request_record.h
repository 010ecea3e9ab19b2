// One request's accounting, whichever handler serves it (forwarded, tunnelled
// or from the cache): counted in flight while alive; when destroyed, one
// metrics record, at -v 1 one request log line, and for reads the cache
// answered, one audit log line (see audit.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net/exchange.h"
#include "proxy/ops/metrics.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

class RequestRecord {
 public:
  RequestRecord(Metrics::Shard& metrics, std::string verb, std::string resource,
                const RequestHead& head, const char* served_from, const PeerInfo& peer);
  ~RequestRecord();
  RequestRecord(const RequestRecord&) = delete;
  RequestRecord& operator=(const RequestRecord&) = delete;

  void setStatus(int code) { status_ = code; }
  int status() const { return status_; }
  void addBytesIn(uint64_t n) { bytes_in_ += n; }
  void addBytesOut(uint64_t n) { bytes_out_ += n; }
  // A read the cache answers: audited when it ends (with --audit-log-path).
  void audit(const RequestInfo& info);

 private:
  bool isWatch() const { return verb_ == "watch"; }
  std::atomic<int64_t>& watchGauge() {
    return metrics_.watches[std::string_view(served_from_) == "cache" ? 0 : 1];
  }

  Metrics::Shard& metrics_;
  std::string verb_, resource_, method_, path_;
  std::string user_agent_, accept_;  // who asked, in which form: for the request log
  const char* served_from_;
  std::string client_, protocol_;
  int status_ = 0;  // 0 until a response started: recorded as 499, the client went away first
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::optional<RequestInfo> audited_;
  std::chrono::steady_clock::time_point start_;  // the request head's arrival
};

}  // namespace kcp::proxy
