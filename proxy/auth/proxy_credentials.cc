#include "proxy/auth/proxy_credentials.h"

#include <sys/stat.h>

#include "config/log.h"

namespace kcp::proxy {

ProxyCredentials::ProxyCredentials(const config::UpstreamConfig& cfg,
                                   std::chrono::milliseconds recheck)
    : token_(cfg.token), token_file_(cfg.token_file), recheck_(recheck) {}

std::string ProxyCredentials::bearerToken() {
  std::lock_guard lock(mu_);
  if (token_file_.empty()) return token_;
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_check_) {
    next_check_ = now + recheck_;
    struct stat st {};
    if (stat(token_file_.c_str(), &st) == 0) {
      const int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      if (mtime != file_mtime_ns_) {
        try {
          std::string t = config::readFile(token_file_, "token file");
          while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
            t.pop_back();
          token_ = std::move(t);
          file_mtime_ns_ = mtime;
          log::verbose(1, "read the upstream token file", {{"file", token_file_}});
        } catch (const config::ConfigError& e) {
          log::warning("cannot re-read the upstream token file; keeping the previous token",
                       {{"error", e.what()}});
        }
      }
    }
  }
  return token_;
}

void ProxyCredentials::authorize(RequestHead& head) {
  if (const std::string token = bearerToken(); !token.empty())
    head.headers.push_back({"authorization", "Bearer " + token});
}

}  // namespace kcp::proxy
