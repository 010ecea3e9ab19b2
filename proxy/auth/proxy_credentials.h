// The proxy's own credentials for its requests to kube-apiserver (reviews,
// the cache's reflectors, requests acting as the proxy): its bearer token,
// if it has one (a client certificate is in the TLS context instead).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "config/kubeconfig.h"
#include "proxy/request/http.h"

namespace kcp::proxy {

// The proxy's own bearer token (static, or a token file re-read when it
// changes, as bound service-account tokens rotate). Thread-safe.
class ProxyCredentials {
 public:
  // The token file is checked for changes at most every `recheck`.
  explicit ProxyCredentials(const config::UpstreamConfig& cfg,
                            std::chrono::milliseconds recheck = std::chrono::seconds(10));
  // The current token, or "" when the proxy authenticates by client certificate.
  std::string bearerToken();
  // Adds the proxy's token to a request it sends upstream, if it has one.
  void authorize(RequestHead& head);

 private:
  std::mutex mu_;
  std::string token_;
  std::string token_file_;
  std::chrono::milliseconds recheck_;
  std::chrono::steady_clock::time_point next_check_{};
  int64_t file_mtime_ns_ = -1;
};

}  // namespace kcp::proxy
