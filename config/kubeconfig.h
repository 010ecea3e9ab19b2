// Upstream connection settings from a kubeconfig file or from the in-cluster
// service-account environment, as client-go's clientcmd reads them.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kcp::config {

// A kubeconfig (or in-cluster environment) that cannot be used; the message
// names the file and the field.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where and how to reach kube-apiserver, resolved from one context. File
// references are read at load time except token_file, which the caller
// re-reads when it rotates (bound service-account tokens do).
struct UpstreamConfig {
  std::string server;  // e.g. "https://127.0.0.1:6443"
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;  // empty: the system's trust store
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;
  std::string token_file;
  std::string context_name;  // which context was used ("" for in-cluster)
  std::string namespace_;    // the context's default namespace, if any
};

// Reads the kubeconfig at `path` and resolves `context` (empty: its
// current-context). Relative file paths resolve against the file's folder.
// Throws ConfigError.
UpstreamConfig loadKubeconfig(const std::filesystem::path& path, const std::string& context = "");

// Same from in-memory YAML; `base_dir` resolves relative paths. Throws ConfigError.
UpstreamConfig parseKubeconfig(std::string_view yaml, const std::filesystem::path& base_dir,
                               const std::string& context = "");

// The in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and the mounted
// service-account token and CA under `secrets_dir`), or nullopt when not
// running in a pod. Throws ConfigError when the environment is half there.
std::optional<UpstreamConfig> inClusterConfig(
    const std::filesystem::path& secrets_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// Reads a whole file; throws ConfigError naming `what` on failure.
std::string readFile(const std::filesystem::path& path, std::string_view what);

}  // namespace kcp::config
