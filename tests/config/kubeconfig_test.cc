#include "config/kubeconfig.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using kcp::config::ConfigError;
using kcp::config::loadKubeconfig;
using kcp::config::parseKubeconfig;

namespace {
const std::filesystem::path kData = std::filesystem::path(KCP_TEST_DATA) / "kubeconfig";
}

TEST_CASE("kubeconfig: current context, inline data and relative files", "[config]") {
  const auto cfg = loadKubeconfig(kData / "files.kubeconfig");
  CHECK(cfg.context_name == "admin");
  CHECK(cfg.server == "https://127.0.0.1:6443");
  CHECK(cfg.tls_server_name == "kubernetes");
  CHECK(cfg.ca_pem.find("test-ca-from-file") != std::string::npos);
  CHECK(cfg.client_cert_pem == "cert");
  CHECK(cfg.client_key_pem == "key");
  CHECK(cfg.namespace_ == "team-a");
  CHECK(cfg.token.empty());
}

TEST_CASE("kubeconfig: an explicit context with a token and a token file", "[config]") {
  const auto cfg = loadKubeconfig(kData / "files.kubeconfig", "reader");
  CHECK(cfg.token == "abc123");
  CHECK(cfg.token_file == (kData / "token").string());
  CHECK(cfg.client_cert_pem.empty());
}

TEST_CASE("kubeconfig: clear errors for unusable files", "[config]") {
  const auto error = [](const std::string& yaml) {
    try {
      parseKubeconfig(yaml, ".");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error("[1, 2").find("not valid YAML") != std::string::npos);
  CHECK(error("- a\n- b\n").find("not a kubeconfig") != std::string::npos);
  CHECK(error("clusters: []\n").find("no current-context") != std::string::npos);
  CHECK(error("current-context: x\ncontexts: []\n").find("no entry named \"x\"") !=
        std::string::npos);
  const std::string base =
      "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
      "clusters: [{name: k, cluster: {server: 'https://h'}}]\n";
  CHECK(error(base + "users: [{name: u, user: {exec: {command: x}}}]\n").find("not supported") !=
        std::string::npos);
  CHECK(error(base + "users: [{name: u, user: {client-certificate-data: Y2VydA==}}]\n")
            .find("together") != std::string::npos);
  CHECK(error(base + "users: [{name: u, user: {client-key-data: '%%%'}}]\n").find("base64") !=
        std::string::npos);
  CHECK(error(std::string(100, '[')).find("nested too deeply") != std::string::npos);
  CHECK(error(base + "users: [{name: u, user: {token: t}}]\n") == "no error");
}

TEST_CASE("kubeconfig: missing file names the path", "[config]") {
  REQUIRE_THROWS_WITH(loadKubeconfig("/nonexistent/kubeconfig"),
                      Catch::Contains("/nonexistent/kubeconfig"));
}

TEST_CASE("in-cluster config from the service-account mount", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / "kcp-incluster-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "sa-token\n";
  std::ofstream(dir / "ca.crt") << "ca";
  unsetenv("KUBERNETES_SERVICE_HOST");
  CHECK_FALSE(kcp::config::inClusterConfig(dir));
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  const auto cfg = kcp::config::inClusterConfig(dir);
  REQUIRE(cfg);
  CHECK(cfg->server == "https://[fd00::1]:443");
  CHECK(cfg->token == "sa-token");
  CHECK(cfg->ca_pem == "ca");
  CHECK(cfg->token_file == (dir / "token").string());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  std::filesystem::remove_all(dir);
}
