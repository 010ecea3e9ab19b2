#include "config/options.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <sstream>

#include "config/kubeconfig.h"

namespace kcp::config {
namespace {

using Setter = std::function<void(ProxyOptions&, const std::string&)>;

struct Flag {
  const char* name;
  const char* value_name;  // empty for booleans
  const char* help;
  Setter set;
  std::function<std::string(const ProxyOptions&)> show_default;
};

int64_t parseInt(const std::string& name, const std::string& text, int64_t min) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min) {
    throw ConfigError("--" + name + ": \"" + text +
                      "\" is not an integer >= " + std::to_string(min));
  }
  return v;
}

bool parseBool(const std::string& name, const std::string& text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  throw ConfigError("--" + name + ": \"" + text + "\" is not true or false");
}

std::string showDuration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

#define KCP_STRING(member)                                     \
  [](ProxyOptions& o, const std::string& v) { o.member = v; }, \
      [](const ProxyOptions& o) { return o.member; }
#define KCP_INT(flag, member, min)                         \
  [](ProxyOptions& o, const std::string& v) {              \
    o.member = decltype(o.member)(parseInt(flag, v, min)); \
  },                                                       \
      [](const ProxyOptions& o) { return std::to_string(o.member); }
#define KCP_BOOL(flag, member)                                                  \
  [](ProxyOptions& o, const std::string& v) { o.member = parseBool(flag, v); }, \
      [](const ProxyOptions& o) { return std::string(o.member ? "true" : "false"); }
#define KCP_DURATION(member)                                                  \
  [](ProxyOptions& o, const std::string& v) { o.member = parseDuration(v); }, \
      [](const ProxyOptions& o) { return showDuration(o.member); }

const std::vector<Flag>& flags() {
  static const std::vector<Flag> table = {
      {"config", "FILE",
       "YAML file presetting any flag below (keys are flag names); flags given on the command line "
       "win.",
       KCP_STRING(config_file)},
      {"upstream-kubeconfig", "FILE",
       "kubeconfig of the kube-apiserver to front. Default: the in-cluster service account when "
       "running in a pod.",
       KCP_STRING(upstream_kubeconfig)},
      {"upstream-context", "NAME",
       "Context of --upstream-kubeconfig to use. Default: its current-context.",
       KCP_STRING(upstream_context)},
      {"listen", "HOST:PORT", "TLS listener for clients (HTTP/2 and HTTP/1.1 via ALPN).",
       KCP_STRING(listen)},
      {"listen-insecure", "HOST:PORT",
       "Cleartext listener (HTTP/1.1 and HTTP/2 prior knowledge) for sidecars. Off when empty; "
       "loopback only unless --allow-insecure-non-loopback.",
       KCP_STRING(listen_insecure)},
      {"allow-insecure-non-loopback", "", "Allow --listen-insecure on a non-loopback address.",
       KCP_BOOL("allow-insecure-non-loopback", allow_insecure_non_loopback)},
      {"tls-cert-file", "FILE",
       "Serving certificate (PEM, may include the chain). Default: a self-signed certificate "
       "generated under --state-dir.",
       KCP_STRING(tls_cert_file)},
      {"tls-private-key-file", "FILE", "Private key of --tls-cert-file.",
       KCP_STRING(tls_private_key_file)},
      {"admin-listen", "HOST:PORT",
       "Cleartext listener for the proxy's own /healthz, /livez, /readyz and /metrics. Off when "
       "empty.",
       KCP_STRING(admin_listen)},
      {"workers", "N",
       "Worker threads, each with its own event loop and connections. 0: one per core.",
       KCP_INT("workers", workers, 0)},
      {"write-kubeconfig", "FILE",
       "Write a kubeconfig pointing clients at this proxy (its address and CA) on start-up.",
       KCP_STRING(write_kubeconfig)},
      {"write-kubeconfig-user-from", "FILE",
       "Copy the current user's credentials of this kubeconfig into --write-kubeconfig (e.g. a "
       "controller's own token). Default: none; clients then add their own (with "
       "--auth-mode=trust-local, a placeholder token the proxy ignores).",
       KCP_STRING(write_kubeconfig_user_from)},
      {"state-dir", "DIR", "Where the proxy keeps its generated serving certificate and state.",
       KCP_STRING(state_dir)},
      {"v", "LEVEL",
       "Log verbosity: 0 start-up and errors, 1 requests, 2 connections, 4 protocol detail.",
       KCP_INT("v", verbosity, 0)},
      {"log-format", "text|json", "Log line format: klog-style text or one JSON object per line.",
       KCP_STRING(log_format)},
      {"shutdown-grace-period", "DURATION",
       "On SIGTERM, stop accepting and let in-flight requests finish for this long.",
       KCP_DURATION(shutdown_grace_period)},
      {"upstream-dial-timeout", "DURATION",
       "Give up connecting (TCP and TLS) to kube-apiserver after this long.",
       KCP_DURATION(upstream_dial_timeout)},
      {"cache-lazy", "BOOL",
       "Start caching a resource that is not in --cache-resources when a client first reads it "
       "(the request itself is forwarded; later ones are served once synced).",
       KCP_BOOL("cache-lazy", cache_lazy)},
      {"cache-protobuf", "BOOL",
       "Cache the resources of --cache-resources in protobuf too, from the start, and a resource "
       "cached on a first request (--cache-lazy) in both forms at once (kube-controller-manager, "
       "kube-scheduler and kubelets read built-in types in protobuf; "
       "custom resources have no protobuf form and cost nothing). false: a resource's protobuf "
       "cache starts on a client's first protobuf request, which is forwarded. Holding both forms "
       "costs about twice the memory.",
       KCP_BOOL("cache-protobuf", cache_protobuf)},
      {"consistent-read-wait", "DURATION",
       "How long a consistent read (a LIST without resourceVersion) may wait for the cache to "
       "reach kube-apiserver's current resourceVersion before it is forwarded instead.",
       KCP_DURATION(consistent_read_wait)},
      {"max-staleness", "DURATION",
       "When kube-apiserver cannot be asked (down, unreachable, answering 5xx), serve consistent "
       "reads from the cache if it is at most this stale (without an open upstream watch, or "
       "behind upstream, for at most this long), and keep /readyz ready while it is; past it, "
       "consistent reads are forwarded (and get upstream's error) and /readyz fails. 0: consistent "
       "reads are never served without upstream's current resourceVersion, and /readyz follows "
       "upstream's.",
       KCP_DURATION(max_staleness)},
      {"warm-restart", "",
       "Save the cache under --state-dir/cache every --cache-save-interval and at shutdown, and at "
       "start-up resume each saved resource's upstream watch from its saved resourceVersion "
       "instead of listing it again (a 410 falls back to a LIST).",
       KCP_BOOL("warm-restart", warm_restart)},
      {"cache-save-interval", "DURATION",
       "With --warm-restart, how often the cache is saved (besides at shutdown).",
       KCP_DURATION(cache_save_interval)},
      {"cache-history-events", "N",
       "Per cached resource, the most events kept for watches to resume from (older: 410, the "
       "client relists).",
       KCP_INT("cache-history-events", cache_history_events, 1)},
      {"cache-history-bytes", "BYTES",
       "Per cached resource, the most bytes of events kept for watch resume.",
       KCP_INT("cache-history-bytes", cache_history_bytes, 1)},
      {"cache-history-age", "DURATION",
       "Per cached resource, how long events are kept for watch resume.",
       KCP_DURATION(cache_history_age)},
      {"cache-snapshots", "N",
       "Per cached resource, the most snapshots kept for continue tokens and Exact reads (older: "
       "forwarded).",
       KCP_INT("cache-snapshots", cache_snapshots, 1)},
      {"cache-snapshot-age", "DURATION",
       "Per cached resource, how long snapshots are kept for continue tokens and Exact reads.",
       KCP_DURATION(cache_snapshot_age)},
      {"upstream-keepalive", "DURATION",
       "PING an upstream connection silent for this long; close it if the answer takes as long "
       "again (a half-open connection would stall its watches forever).",
       KCP_DURATION(upstream_keepalive)},
      {"cache-resources", "LIST",
       "Comma-separated resources to keep in the cache from start-up, as RESOURCE, RESOURCE.GROUP "
       "or GROUP/RESOURCE (configmaps,pods,deployments.apps,example.com/widgets), or * for every "
       "resource that supports list and watch. LISTs of them are answered from the cache when it "
       "can answer exactly as kube-apiserver would (see README); /readyz waits for their first "
       "sync.",
       [](ProxyOptions& o, const std::string& v) {
         o.cache_resources.clear();
         size_t start = 0;
         while (start <= v.size()) {
           const size_t comma = v.find(',', start);
           std::string r =
               v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
           // GROUP/RESOURCE (apps/deployments, core/pods) is RESOURCE.GROUP.
           if (const auto slash = r.find('/'); slash != std::string::npos) {
             const std::string group = r.substr(0, slash);
             r = r.substr(slash + 1) + (group.empty() || group == "core" ? "" : "." + group);
           }
           if (!r.empty()) o.cache_resources.push_back(r);
           if (comma == std::string::npos) break;
           start = comma + 1;
         }
       },
       [](const ProxyOptions& o) {
         std::string out;
         for (const auto& r : o.cache_resources) out += (out.empty() ? "" : ",") + r;
         return out;
       }},
      {"auth-mode", "delegate|trust-local",
       "delegate: clients of the TLS listener authenticate (client certificates against "
       "--client-ca-file, bearer tokens by TokenReview) and cached reads are authorized by "
       "SubjectAccessReview, as kube-apiserver would; forwarded requests carry the client's "
       "identity. trust-local: every client acts as the proxy (sidecars; loopback listeners only). "
       "The cleartext --listen-insecure listener, loopback only, always acts as the proxy.",
       [](ProxyOptions& o, const std::string& v) {
         if (v != "delegate" && v != "trust-local")
           throw ConfigError("--auth-mode: \"" + v + "\" is not delegate or trust-local");
         o.auth_mode = v;
       },
       [](const ProxyOptions& o) { return o.auth_mode; }},
      {"client-ca-file", "FILE",
       "CA bundle for client certificates on the TLS listener (delegate mode): user = CN, groups = "
       "O, as kube-apiserver. Default: certificates are not asked for.",
       KCP_STRING(client_ca_file)},
      {"anonymous-auth", "BOOL",
       "Delegate mode: treat requests without credentials as system:anonymous (authorized like any "
       "user) rather than refusing them with 401.",
       KCP_BOOL("anonymous-auth", anonymous_auth)},
      {"token-review-audiences", "LIST",
       "Comma-separated audiences a client's bearer token must be meant for (sent in the "
       "TokenReview; the answer must name one). Default: kube-apiserver's own API audiences.",
       [](ProxyOptions& o, const std::string& v) {
         o.token_review_audiences.clear();
         for (size_t start = 0; start <= v.size();) {
           const size_t comma = std::min(v.find(',', start), v.size());
           if (comma > start) o.token_review_audiences.push_back(v.substr(start, comma - start));
           start = comma + 1;
         }
       },
       [](const ProxyOptions& o) {
         std::string out;
         for (const auto& a : o.token_review_audiences) out += (out.empty() ? "" : ",") + a;
         return out;
       }},
      {"authentication-cache-ttl", "DURATION",
       "How long a TokenReview that authenticated a token is reused.",
       KCP_DURATION(authentication_cache_ttl)},
      {"authentication-negative-cache-ttl", "DURATION",
       "How long a TokenReview that refused a token is reused.",
       KCP_DURATION(authentication_negative_cache_ttl)},
      {"authorization-cache-authorized-ttl", "DURATION",
       "How long an allowing SubjectAccessReview is reused.",
       KCP_DURATION(authorization_cache_authorized_ttl)},
      {"authorization-cache-unauthorized-ttl", "DURATION",
       "How long a denying SubjectAccessReview is reused.",
       KCP_DURATION(authorization_cache_unauthorized_ttl)},
      {"audit-log-path", "PATH",
       "Write one JSON line per read the cache answered or refused (user, verb, resource, "
       "namespace, name, decision, code, bytes) to this file, or to standard output for -. "
       "Forwarded requests are in kube-apiserver's own audit log. Off when empty.",
       KCP_STRING(audit_log_path)},
      {"max-concurrent-streams", "N",
       "HTTP/2 streams a client connection may have open at once "
       "(SETTINGS_MAX_CONCURRENT_STREAMS).",
       KCP_INT("max-concurrent-streams", max_concurrent_streams, 1)},
      {"client-idle-timeout", "DURATION",
       "Close a client connection with no request in progress for this long (HTTP/2: GOAWAY), as "
       "kube-apiserver's server does.",
       KCP_DURATION(client_idle_timeout)},
      {"request-header-timeout", "DURATION",
       "An HTTP/1.1 request head must arrive within this long of its first byte, or the connection "
       "is closed (slowloris).",
       KCP_DURATION(request_header_timeout)},
      {"max-request-header-bytes", "BYTES",
       "Largest request head (request line and headers) accepted; larger gets 431.",
       KCP_INT("max-request-header-bytes", max_request_header_bytes, 1024)},
      {"max-header-count", "N", "Most request headers accepted; more gets 431.",
       KCP_INT("max-header-count", max_header_count, 8)},
      {"max-request-body-bytes", "BYTES",
       "Largest request body accepted (forwarded writes), as kube-apiserver's own limit; larger "
       "gets 413 RequestEntityTooLarge (a body without a declared length is cut off when it passes "
       "it).",
       KCP_INT("max-request-body-bytes", max_request_body_bytes, 0)},
      {"max-connections-per-client", "N",
       "Most connections open at once from one client address; more are closed as they arrive. 0: "
       "no limit.",
       KCP_INT("max-connections-per-client", max_connections_per_client, 0)},
      {"tls-handshake-timeout", "DURATION",
       "A client's TLS handshake (or, on the cleartext listener, its first bytes) must be done "
       "within this long.",
       KCP_DURATION(tls_handshake_timeout)},
      {"http2-max-resets-burst", "N",
       "HTTP/2 rapid-reset guard: RST_STREAM frames a client may send in a burst before the "
       "connection is closed (GOAWAY).",
       KCP_INT("http2-max-resets-burst", http2_max_resets_burst, 1)},
      {"http2-max-resets-per-second", "N",
       "HTTP/2 rapid-reset guard: RST_STREAM frames per second a client may send beyond the burst.",
       KCP_INT("http2-max-resets-per-second", http2_max_resets_per_second, 1)},
      {"http2-max-continuations", "N",
       "Most CONTINUATION frames after one HEADERS frame; more closes the connection (CONTINUATION "
       "flood).",
       KCP_INT("http2-max-continuations", http2_max_continuations, 1)},
  };
  return table;
}

const Flag* findFlag(const std::string& name) {
  for (const auto& f : flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

void applyConfigFile(ProxyOptions& opts, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(readFile(path, "--config"));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--config " + path + ": " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError("--config " + path + ": not a map of flag names to values");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const Flag* flag = findFlag(key);
    if (flag == nullptr || key == "config")
      throw ConfigError("--config " + path + ": unknown key " + key);
    if (!kv.second.IsScalar())
      throw ConfigError("--config " + path + ": " + key + " is not a scalar");
    flag->set(opts, kv.second.as<std::string>());
  }
}

}  // namespace

std::chrono::milliseconds parseDuration(const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  double total_ms = 0;
  size_t i = 0;
  if (text.empty()) throw ConfigError("empty duration");
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.'))
      ++j;
    if (j == i) throw ConfigError("\"" + text + "\" is not a duration like 30s, 1m or 500ms");
    const double value = std::stod(text.substr(i, j - i));
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    const std::string unit = text.substr(j, k - j);
    static const std::map<std::string, double> kUnitMs = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const auto it = kUnitMs.find(unit);
    if (it == kUnitMs.end())
      throw ConfigError("\"" + text + "\": unknown duration unit \"" + unit + "\"");
    total_ms += value * it->second;
    i = k;
  }
  return std::chrono::milliseconds(int64_t(total_ms));
}

ProxyOptions parseOptions(const std::vector<std::string>& args) {
  // Two passes: find --config first so that command-line flags override it.
  struct Given {
    const Flag* flag;
    std::string value;
  };
  std::vector<Given> given;
  ProxyOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      opts.show_help = true;
      continue;
    }
    if (arg == "--version") {
      opts.show_version = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') throw ConfigError("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(arg.starts_with("--") ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const Flag* flag = findFlag(name);
    if (flag == nullptr) throw ConfigError("unknown flag --" + name + " (see --help)");
    if (!has_value) {
      if (*flag->value_name == '\0') {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        throw ConfigError("--" + name + " needs a value");
      }
    }
    given.push_back({flag, value});
  }
  for (const auto& g : given) {
    if (std::string(g.flag->name) == "config") applyConfigFile(opts, g.value);
  }
  for (const auto& g : given) {
    try {
      g.flag->set(opts, g.value);
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      throw ConfigError(what.starts_with("--") ? what
                                               : "--" + std::string(g.flag->name) + ": " + what);
    }
  }
  if (opts.log_format != "text" && opts.log_format != "json") {
    throw ConfigError("--log-format: \"" + opts.log_format + "\" is not text or json");
  }
  if (opts.tls_cert_file.empty() != opts.tls_private_key_file.empty()) {
    throw ConfigError("--tls-cert-file and --tls-private-key-file must be given together");
  }
  return opts;
}

std::string optionsHelp() {
  std::ostringstream out;
  out << "kube-cache-proxy: a caching HTTP/2 proxy in front of kube-apiserver.\n\n"
         "Usage: kube-cache-proxy [flags]\n\nFlags:\n";
  const ProxyOptions defaults;
  for (const auto& f : flags()) {
    std::string head = std::string("  --") + f.name;
    if (*f.value_name != '\0') head += std::string(" ") + f.value_name;
    out << head << "\n        " << f.help;
    const std::string def = f.show_default(defaults);
    if (!def.empty()) out << " (default " << def << ")";
    out << "\n";
  }
  out << "  -h, --help\n        Show this help.\n  --version\n        Print the version.\n";
  return out.str();
}

}  // namespace kcp::config
