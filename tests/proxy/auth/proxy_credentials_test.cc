#include "proxy/auth/proxy_credentials.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using kcp::proxy::ProxyCredentials;

TEST_CASE("a static token is used as is", "[proxy]") {
  kcp::config::UpstreamConfig cfg;
  cfg.token = "static";
  ProxyCredentials creds(cfg);
  CHECK(creds.bearerToken() == "static");
}

TEST_CASE("a token file is re-read when it rotates", "[proxy]") {
  const auto path = std::filesystem::temp_directory_path() / "kcp-token-test";
  std::ofstream(path) << "first\n";
  kcp::config::UpstreamConfig cfg;
  cfg.token = "from-kubeconfig";
  cfg.token_file = path.string();
  ProxyCredentials creds(cfg, std::chrono::milliseconds(0));
  CHECK(creds.bearerToken() == "first");  // the file wins, trailing newline trimmed
  std::ofstream(path) << "second";
  std::filesystem::last_write_time(
      path, std::filesystem::last_write_time(path) + std::chrono::seconds(5));
  CHECK(creds.bearerToken() == "second");
  std::filesystem::remove(path);
  CHECK(creds.bearerToken() == "second");  // a vanished file keeps the last good token
}
