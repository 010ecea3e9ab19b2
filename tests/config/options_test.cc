#include "config/options.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "config/kubeconfig.h"

using kcp::config::ConfigError;
using kcp::config::parseDuration;
using kcp::config::parseOptions;

TEST_CASE("flags take --name=value, --name value and bare booleans", "[config]") {
  const auto o = parseOptions({"--listen=0.0.0.0:7443", "--workers", "3", "-v=2",
                               "--allow-insecure-non-loopback", "--shutdown-grace-period", "1m30s",
                               "--log-format=json"});
  CHECK(o.listen == "0.0.0.0:7443");
  CHECK(o.workers == 3);
  CHECK(o.verbosity == 2);
  CHECK(o.allow_insecure_non_loopback);
  CHECK(o.shutdown_grace_period == std::chrono::seconds(90));
  CHECK(o.log_format == "json");
  CHECK(o.admin_listen == "127.0.0.1:6444");  // untouched default
}

TEST_CASE("--cache-resources takes RESOURCE, RESOURCE.GROUP and GROUP/RESOURCE", "[config]") {
  const auto o =
      parseOptions({"--cache-resources",
                    "pods,deployments.apps,apps/replicasets,core/nodes,example.com/widgets,,*",
                    "--warm-restart", "--max-staleness", "45s"});
  CHECK(o.cache_resources == std::vector<std::string>{"pods", "deployments.apps",
                                                      "replicasets.apps", "nodes",
                                                      "widgets.example.com", "*"});
  CHECK(o.warm_restart);
  CHECK(o.max_staleness == std::chrono::seconds(45));
  CHECK_FALSE(parseOptions({}).warm_restart);
  CHECK(parseOptions({}).max_staleness.count() == 0);
}

TEST_CASE("bad flags are refused with a message naming them", "[config]") {
  REQUIRE_THROWS_WITH(parseOptions({"--nope"}), Catch::Contains("unknown flag --nope"));
  REQUIRE_THROWS_WITH(parseOptions({"--workers=x"}), Catch::Contains("--workers"));
  REQUIRE_THROWS_WITH(parseOptions({"--workers=-1"}), Catch::Contains("--workers"));
  REQUIRE_THROWS_WITH(parseOptions({"--listen"}), Catch::Contains("needs a value"));
  REQUIRE_THROWS_WITH(parseOptions({"--log-format=xml"}), Catch::Contains("--log-format"));
  REQUIRE_THROWS_WITH(parseOptions({"--tls-cert-file=a"}), Catch::Contains("together"));
  REQUIRE_THROWS_WITH(parseOptions({"--shutdown-grace-period=5 parsecs"}),
                      Catch::Contains("--shutdown-grace-period"));
  REQUIRE_THROWS_WITH(parseOptions({"stray"}), Catch::Contains("unexpected argument"));
}

TEST_CASE("a config file presets flags; the command line wins", "[config]") {
  const auto path = std::filesystem::temp_directory_path() / "kcp-options-test.yaml";
  std::ofstream(path) << "listen: 127.0.0.1:1111\nworkers: 4\nv: 3\n";
  const auto o = parseOptions({"--workers=2", "--config", path.string()});
  CHECK(o.listen == "127.0.0.1:1111");
  CHECK(o.workers == 2);
  CHECK(o.verbosity == 3);
  std::ofstream(path) << "lisen: x\n";
  REQUIRE_THROWS_WITH(parseOptions({"--config", path.string()}),
                      Catch::Contains("unknown key lisen"));
  std::filesystem::remove(path);
}

TEST_CASE("durations as Go writes them", "[config]") {
  CHECK(parseDuration("0") == std::chrono::milliseconds(0));
  CHECK(parseDuration("250ms") == std::chrono::milliseconds(250));
  CHECK(parseDuration("1.5s") == std::chrono::milliseconds(1500));
  CHECK(parseDuration("2h") == std::chrono::hours(2));
  CHECK_THROWS_AS(parseDuration("10"), ConfigError);
  CHECK_THROWS_AS(parseDuration("s"), ConfigError);
  CHECK_THROWS_AS(parseDuration(""), ConfigError);
}

TEST_CASE("--help documents every flag", "[config]") {
  const std::string help = kcp::config::optionsHelp();
  for (const char* flag :
       {"--upstream-kubeconfig", "--listen", "--listen-insecure", "--tls-cert-file",
        "--tls-private-key-file", "--admin-listen", "--workers", "--write-kubeconfig",
        "--state-dir", "--v", "--log-format", "--config"}) {
    CHECK(help.find(std::string(flag) + " ") != std::string::npos);
  }
}
