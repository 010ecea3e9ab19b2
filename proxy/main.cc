// kube-cache-proxy: start-up, workers, signals and graceful shutdown.
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "config/base64.h"
#include "config/kubeconfig.h"
#include "config/log.h"
#include "config/options.h"
#include "proxy/admin.h"
#include "proxy/cache_feed/cache_manager.h"
#include "proxy/net/tls.h"
#include "proxy/net/worker.h"
#include "proxy/ops/audit.h"
#include "proxy/proxy_router.h"

namespace kcp::proxy {
namespace {

constexpr const char* kVersion = "kube-cache-proxy 0.1.0";

config::UpstreamConfig loadUpstream(const config::ProxyOptions& opts) {
  if (!opts.upstream_kubeconfig.empty())
    return config::loadKubeconfig(opts.upstream_kubeconfig, opts.upstream_context);
  if (auto in_cluster = config::inClusterConfig()) return *in_cluster;
  throw config::ConfigError(
      "no upstream: give --upstream-kubeconfig, or run in a pod with a service account");
}

std::string hostOf(const std::string& address) {
  if (address.starts_with("[")) return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

// A kubeconfig that points clients at this proxy, with the user credentials
// of --write-kubeconfig-user-from when given (never the proxy's own). In
// delegate mode without them, clients add their own (kubectl --token ...).
void writeClientKubeconfig(const std::string& path, const config::ProxyOptions& opts,
                           const std::string& ca_pem) {
  std::string user = "{}";
  if (!opts.write_kubeconfig_user_from.empty()) {
    const config::UpstreamConfig creds = config::loadKubeconfig(opts.write_kubeconfig_user_from);
    user.clear();
    if (!creds.client_cert_pem.empty()) {
      user += "\n    client-certificate-data: " + config::base64Encode(creds.client_cert_pem) +
              "\n    client-key-data: " + config::base64Encode(creds.client_key_pem);
    }
    if (!creds.token.empty()) user += "\n    token: " + creds.token;
    if (!creds.token_file.empty()) user += "\n    tokenFile: " + creds.token_file;
    if (user.empty()) user = "{}";
  } else if (opts.auth_mode == "trust-local") {
    // Clients act as the proxy whatever they send, and the proxy drops
    // their credentials; but kubectl asks for a password (and fails without
    // a terminal) when a kubeconfig has none, so give it one to send.
    user = "\n    token: kube-cache-proxy-trust-local";
  }
  std::string host = hostOf(opts.listen);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  const std::string port = opts.listen.substr(opts.listen.rfind(':') + 1);
  const std::string server =
      "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  std::ostringstream out;
  out << "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-cache-proxy\n  cluster:\n    "
         "server: "
      << server << "\n    certificate-authority-data: " << config::base64Encode(ca_pem) << "\n";
  if (!opts.listen_insecure.empty()) {
    out << "- name: kube-cache-proxy-insecure\n  cluster:\n    server: http://"
        << opts.listen_insecure << "\n";
  }
  out << "users:\n- name: kube-cache-proxy\n  user: " << user
      << "\ncontexts:\n- name: kube-cache-proxy\n  context:\n"
         "    cluster: kube-cache-proxy\n    user: kube-cache-proxy\n";
  if (!opts.listen_insecure.empty()) {
    out << "- name: kube-cache-proxy-insecure\n  context:\n    cluster: kube-cache-proxy-insecure\n"
           "    user: kube-cache-proxy\n";
  }
  out << "current-context: kube-cache-proxy\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp);
    file << out.str();
  }
  std::filesystem::permissions(
      tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, path);
}

// Every connection is a file descriptor: take what the hard limit allows
// (the soft one is often 1024).
void raiseOpenFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0) {
    log::verbose(1, "raised the open file limit",
                 {{"from", std::to_string(before)}, {"to", std::to_string(lim.rlim_max)}});
  }
}

struct SignalContext {
  event_base* base;
  int count = 0;
};

int run(const config::ProxyOptions& opts) {
  const config::UpstreamConfig upstream = loadUpstream(opts);
  const UpstreamTarget target = parseUpstreamServer(upstream);
  if (!opts.listen_insecure.empty() && !opts.allow_insecure_non_loopback &&
      !isLoopbackAddress(opts.listen_insecure)) {
    throw config::ConfigError("--listen-insecure " + opts.listen_insecure +
                              " is not a loopback address; cleartext is for sidecars (add "
                              "--allow-insecure-non-loopback to insist)");
  }
  if (opts.auth_mode == "trust-local") {
    // Every client acts as the proxy: only processes on this host (a sidecar's pod) may reach it.
    if (!isLoopbackAddress(opts.listen)) {
      throw config::ConfigError("--auth-mode=trust-local: --listen " + opts.listen +
                                " is not a loopback address; every client would act as the proxy");
    }
    log::warning(
        "--auth-mode=trust-local: every client acts as the proxy's own identity; "
        "use it for a sidecar only",
        {{"listen", opts.listen}});
  } else if (opts.client_ca_file.empty()) {
    log::info(
        "no --client-ca-file: clients of the TLS listener authenticate with bearer tokens only");
  }

  // Serving certificate: the user's, or one generated under --state-dir.
  std::string cert_file = opts.tls_cert_file, key_file = opts.tls_private_key_file, ca_pem;
  if (cert_file.empty()) {
    std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') hosts.emplace_back(name);
    const std::string listen_host = hostOf(opts.listen);
    if (!listen_host.empty() && listen_host != "0.0.0.0" && listen_host != "::" &&
        listen_host != "localhost" &&
        std::find(hosts.begin(), hosts.end(), listen_host) == hosts.end()) {
      hosts.push_back(listen_host);
    }
    const ServingCert generated = ensureServingCert(opts.state_dir + "/pki", hosts);
    cert_file = generated.cert_file;
    key_file = generated.key_file;
    ca_pem = config::readFile(generated.ca_file, "generated CA");
  } else {
    ca_pem = config::readFile(cert_file, "--tls-cert-file");
  }
  if (!opts.audit_log_path.empty()) audit::open(opts.audit_log_path);
  SslCtxPtr server_ctx = makeServerContext(
      cert_file, key_file, opts.auth_mode == "delegate" ? opts.client_ca_file : std::string());
  SslCtxPtr proxy_ctx = makeUpstreamContext(upstream, true);
  SslCtxPtr passthrough_ctx = makeUpstreamContext(upstream, false);
  ProxyCredentials credentials(upstream);
  Metrics metrics;
  UpstreamHealth health;
  metrics.addGauge("kube_cache_proxy_upstream_ready", "",
                   "1 when kube-apiserver answered /readyz with 200 lately.",
                   [&health] { return health.ready() ? 1.0 : 0.0; });
  // The flag as a series, so that one alert rule fits every deployment.
  metrics.addGauge("kube_cache_proxy_max_staleness_seconds", "",
                   "--max-staleness: how stale the cache may be while it answers consistent reads "
                   "kube-apiserver cannot be asked for (0: never).",
                   [s = std::chrono::duration<double>(opts.max_staleness).count()] { return s; });

  ClientLimits limits;
  limits.max_header_bytes = opts.max_request_header_bytes;
  limits.max_header_count = opts.max_header_count;
  limits.max_concurrent_streams =
      uint32_t(std::min<int64_t>(opts.max_concurrent_streams, UINT32_MAX));
  limits.idle_timeout = opts.client_idle_timeout;
  limits.header_timeout = opts.request_header_timeout;
  limits.tls_handshake_timeout = opts.tls_handshake_timeout;
  limits.max_request_body_bytes = opts.max_request_body_bytes;
  limits.http2_reset_burst = uint64_t(opts.http2_max_resets_burst);
  limits.http2_resets_per_second = uint64_t(opts.http2_max_resets_per_second);
  limits.http2_max_continuations = size_t(opts.http2_max_continuations);
  raiseOpenFileLimit();
  // Counted across the main workers (the admin listener is not limited).
  std::unique_ptr<ClientConnectionCounter> connections;
  ClientLimits worker_limits = limits;
  if (opts.max_connections_per_client > 0) {
    connections = std::make_unique<ClientConnectionCounter>(opts.max_connections_per_client);
    worker_limits.connections = connections.get();
  }

  std::vector<ListenSpec> listens = {{opts.listen, server_ctx.get()}};
  if (!opts.listen_insecure.empty()) listens.push_back({opts.listen_insecure, nullptr});
  const int n_workers =
      opts.workers > 0 ? opts.workers : int(std::max(1u, std::thread::hardware_concurrency()));
  // The main thread runs the admin listener, the readiness probe and signals.
  AdminRouter* admin_router = nullptr;
  std::vector<ListenSpec> admin_listens;
  if (!opts.admin_listen.empty()) admin_listens.push_back({opts.admin_listen, nullptr});
  Worker admin("admin", admin_listens, limits, metrics.addShard(),
               [&](Worker& w) -> std::unique_ptr<Router> {
                 auto r =
                     std::make_unique<AdminRouter>(w.base(), target, proxy_ctx.get(), credentials,
                                                   opts.upstream_dial_timeout, metrics, health);
                 admin_router = r.get();
                 return r;
               });
  admin.bindListeners();
  // The cache runs on the admin loop, over its own upstream connections.
  std::unique_ptr<UpstreamPool> cache_pool;
  std::unique_ptr<CacheManager> cache;
  if (!opts.cache_resources.empty() || opts.cache_lazy) {
    cache_pool = std::make_unique<UpstreamPool>(admin.base(), target, proxy_ctx.get(),
                                                opts.upstream_dial_timeout, opts.upstream_keepalive,
                                                "cache");
    const cache::StoreLimits limits{
        size_t(opts.cache_history_events), size_t(opts.cache_history_bytes),
        std::chrono::duration_cast<std::chrono::seconds>(opts.cache_history_age),
        size_t(opts.cache_snapshots),
        std::chrono::duration_cast<std::chrono::seconds>(opts.cache_snapshot_age)};
    CacheManager::Persistence persistence;
    if (opts.warm_restart) persistence = {opts.state_dir + "/cache", opts.cache_save_interval};
    cache = std::make_unique<CacheManager>(
        admin.base(), *cache_pool, credentials, opts.cache_resources, opts.cache_lazy,
        opts.cache_protobuf, limits, std::move(persistence), metrics);
    if (admin_router != nullptr) {
      admin_router->setCache(cache.get(),
                             !opts.admin_listen.empty() && isLoopbackAddress(opts.admin_listen),
                             opts.max_staleness);
    }
    cache->start();
  }
  AuthCache auth_cache(
      {opts.authentication_cache_ttl, opts.authentication_negative_cache_ttl,
       opts.authorization_cache_authorized_ttl, opts.authorization_cache_unauthorized_ttl},
      opts.token_review_audiences);
  // Workers last: destroyed first, before the cache their routers read.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < n_workers; ++i) {
    Metrics::Shard& shard = metrics.addShard();
    workers.push_back(std::make_unique<Worker>(
        "worker-" + std::to_string(i), listens, worker_limits, shard,
        [&](Worker& w) -> std::unique_ptr<Router> {
          return std::make_unique<ProxyRouter>(
              w.base(), target, proxy_ctx.get(), passthrough_ctx.get(), credentials,
              opts.upstream_dial_timeout, opts.upstream_keepalive, w.metrics(), cache.get(),
              ProxyRouter::ConsistentReads{opts.consistent_read_wait, opts.max_staleness},
              ProxyRouter::Auth{opts.auth_mode == "delegate", opts.anonymous_auth, &auth_cache});
        }));
  }
  for (auto& w : workers) w->start();

  if (!opts.write_kubeconfig.empty()) {
    writeClientKubeconfig(opts.write_kubeconfig, opts, ca_pem);
    log::info("wrote a kubeconfig for clients", {{"path", opts.write_kubeconfig}});
  }
  log::info("kube-cache-proxy serving",
            {{"listen", opts.listen},
             {"listen_insecure", opts.listen_insecure.empty() ? "off" : opts.listen_insecure},
             {"admin", opts.admin_listen.empty() ? "off" : opts.admin_listen},
             {"upstream", upstream.server},
             {"workers", std::to_string(n_workers)},
             {"version", kVersion}});

  // SIGTERM / SIGINT: stop accepting, drain, exit. A second signal exits at once.
  SignalContext sig{admin.base()};
  const auto on_signal = [](evutil_socket_t signo, short, void* arg) {
    auto& ctx = *static_cast<SignalContext*>(arg);
    if (++ctx.count > 1) {
      log::warning("second signal: exiting now");
      _exit(1);
    }
    log::info("shutting down", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
    event_base_loopexit(ctx.base, nullptr);
  };
  event* sigterm = evsignal_new(admin.base(), SIGTERM, on_signal, &sig);
  event* sigint = evsignal_new(admin.base(), SIGINT, on_signal, &sig);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  admin.run();

  // Graceful shutdown: readiness fails first, then every worker drains.
  if (admin_router != nullptr) admin_router->setShuttingDown();
  for (auto& w : workers) w->requestShutdown(opts.shutdown_grace_period);
  for (auto& w : workers) w->join();
  if (cache) cache->saveState();
  event_free(sigterm);
  event_free(sigint);
  log::info("stopped");
  return 0;
}

}  // namespace
}  // namespace kcp::proxy

int main(int argc, char** argv) {
  using namespace kcp;
  signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();
  config::ProxyOptions opts;
  try {
    opts = config::parseOptions(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const config::ConfigError& e) {
    std::cerr << "kube-cache-proxy: " << e.what() << "\n";
    return 2;
  }
  if (opts.show_help) {
    std::cout << config::optionsHelp();
    return 0;
  }
  if (opts.show_version) {
    std::cout << proxy::kVersion << "\n";
    return 0;
  }
  log::configure(opts.verbosity,
                 opts.log_format == "json" ? log::Format::kJson : log::Format::kText);
  try {
    return proxy::run(opts);
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    return 1;
  }
}
