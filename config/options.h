// The proxy's settings: kube-style command-line flags, optionally preset by a
// YAML config file whose keys are the flag names (flags win).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace kcp::config {

struct ProxyOptions {
  std::string config_file;
  std::string upstream_kubeconfig;  // empty: in-cluster service account
  std::string upstream_context;
  std::string listen = "127.0.0.1:6443";
  std::string listen_insecure;  // empty: off
  bool allow_insecure_non_loopback = false;
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string admin_listen = "127.0.0.1:6444";
  int workers = 0;  // 0: one per core
  std::string write_kubeconfig;
  std::string
      write_kubeconfig_user_from;  // kubeconfig whose user credentials go into write_kubeconfig
  std::string state_dir = ".kube-cache-proxy";
  int verbosity = 0;
  std::string log_format = "text";
  std::chrono::milliseconds shutdown_grace_period{std::chrono::seconds(30)};
  std::chrono::milliseconds upstream_dial_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds upstream_keepalive{std::chrono::seconds(30)};
  std::vector<std::string> cache_resources;  // e.g. configmaps, deployments.apps
  bool cache_lazy = true;
  bool cache_protobuf = true;  // configured resources get a protobuf store from the start too
  std::chrono::milliseconds consistent_read_wait{
      std::chrono::seconds(3)};  // kube-apiserver waits as long
  // How stale a consistent read may be served from the cache when upstream
  // cannot be asked; also what /readyz tolerates. Zero: off.
  std::chrono::milliseconds max_staleness{0};
  // Warm restart: the cache saved under state_dir/cache every interval and at
  // shutdown, resumed from at start-up.
  bool warm_restart = false;
  std::chrono::milliseconds cache_save_interval{std::chrono::minutes(1)};
  // Per cached resource: the event history kept for watch resume, and the
  // snapshots kept for continue tokens and Exact reads.
  int64_t cache_history_events = 10000;
  int64_t cache_history_bytes = 256 << 20;
  std::chrono::milliseconds cache_history_age{std::chrono::minutes(5)};
  int64_t cache_snapshots = 1000;
  std::chrono::milliseconds cache_snapshot_age{std::chrono::seconds(75)};
  // Who a client is and what it may read from the cache (see README "Choosing the auth mode").
  std::string auth_mode = "delegate";  // or "trust-local"
  std::string client_ca_file;
  bool anonymous_auth = false;
  // As kube-apiserver's webhook authenticator and authorizer.
  std::vector<std::string> token_review_audiences;  // empty: kube-apiserver's own
  std::chrono::milliseconds authentication_cache_ttl{std::chrono::minutes(2)};
  std::chrono::milliseconds authentication_negative_cache_ttl{std::chrono::minutes(2)};
  std::chrono::milliseconds authorization_cache_authorized_ttl{std::chrono::minutes(5)};
  std::chrono::milliseconds authorization_cache_unauthorized_ttl{std::chrono::seconds(30)};
  std::string audit_log_path;  // empty: off; "-": standard output
  int64_t max_concurrent_streams = 250;
  std::chrono::milliseconds client_idle_timeout{std::chrono::seconds(90)};
  std::chrono::milliseconds request_header_timeout{std::chrono::seconds(32)};
  int64_t max_request_header_bytes = 1 << 20;
  int64_t max_header_count = 256;
  int64_t max_request_body_bytes = 3 << 20;   // kube-apiserver's own limit
  int64_t max_connections_per_client = 2048;  // 0: no limit
  std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(10)};
  int64_t http2_max_resets_burst = 1000, http2_max_resets_per_second = 33;  // nghttp2's defaults
  int64_t http2_max_continuations = 8;
  bool show_help = false;
  bool show_version = false;
};

// Parses argv (after the program name). Throws ConfigError (from
// kubeconfig.h) with a message naming the flag on any bad input.
ProxyOptions parseOptions(const std::vector<std::string>& args);

// The --help text: every flag with its default and meaning.
std::string optionsHelp();

// Go-style durations as kube flags take them: "30s", "1m30s", "500ms", "2h".
std::chrono::milliseconds parseDuration(const std::string& text);

}  // namespace kcp::config
