#include "config/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/base64.h"

namespace kcp::config {
namespace {

// yaml-cpp recurses per nesting level; a kubeconfig is never deep or large, so
// bound both before parsing rather than trust the parser with hostile input.
constexpr size_t kMaxKubeconfigBytes = 4 << 20;
constexpr int kMaxNesting = 64;

void checkShape(std::string_view yaml) {
  if (yaml.size() > kMaxKubeconfigBytes) throw ConfigError("kubeconfig larger than 4 MiB");
  int depth = 0;
  for (const char c : yaml) {
    if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) throw ConfigError("kubeconfig nested too deeply");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

// Finds the entry named `name` in a kubeconfig list such as `clusters`, and
// returns its `field` map (`cluster`, `user`, `context`).
YAML::Node findNamed(const YAML::Node& root, const char* list, const std::string& name,
                     const char* field) {
  const YAML::Node entries = root[list];
  if (entries && !entries.IsSequence()) throw ConfigError(std::string(list) + " is not a list");
  if (entries) {
    for (const auto& entry : entries) {
      if (entry.IsMap() && entry["name"] && entry["name"].IsScalar() &&
          entry["name"].as<std::string>() == name) {
        const YAML::Node value = entry[field];
        if (value && !value.IsMap())
          throw ConfigError(std::string(list) + " entry " + name + " is not a map");
        return value ? value : YAML::Node(YAML::NodeType::Map);
      }
    }
  }
  throw ConfigError(std::string(list) + " has no entry named \"" + name + "\"");
}

std::string scalar(const YAML::Node& map, const char* key) {
  const YAML::Node v = map[key];
  if (!v || v.IsNull()) return {};
  if (!v.IsScalar()) throw ConfigError(std::string(key) + " is not a string");
  return v.as<std::string>();
}

std::filesystem::path resolve(const std::filesystem::path& base_dir, const std::string& file) {
  const std::filesystem::path p(file);
  return p.is_absolute() ? p : base_dir / p;
}

// A PEM value given inline as base64 (`<key>-data`) or as a file (`<key>`).
std::string pemField(const YAML::Node& map, const std::string& key,
                     const std::filesystem::path& base_dir) {
  const std::string data = scalar(map, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = base64Decode(data);
    if (!decoded) throw ConfigError(key + "-data is not valid base64");
    return *decoded;
  }
  const std::string file = scalar(map, key.c_str());
  return file.empty() ? std::string() : readFile(resolve(base_dir, file), key);
}

}  // namespace

std::string readFile(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(std::string(what) + ": cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

UpstreamConfig parseKubeconfig(std::string_view yaml, const std::filesystem::path& base_dir,
                               const std::string& context) {
  checkShape(yaml);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string("not valid YAML: ") + e.what());
  }
  if (!root.IsMap()) throw ConfigError("not a kubeconfig (top level is not a map)");

  UpstreamConfig cfg;
  try {
    cfg.context_name = context.empty() ? scalar(root, "current-context") : context;
    if (cfg.context_name.empty()) throw ConfigError("no context given and no current-context set");
    const YAML::Node ctx = findNamed(root, "contexts", cfg.context_name, "context");
    cfg.namespace_ = scalar(ctx, "namespace");

    const YAML::Node cluster = findNamed(root, "clusters", scalar(ctx, "cluster"), "cluster");
    cfg.server = scalar(cluster, "server");
    if (cfg.server.empty()) throw ConfigError("cluster has no server");
    cfg.tls_server_name = scalar(cluster, "tls-server-name");
    cfg.insecure_skip_tls_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";
    cfg.ca_pem = pemField(cluster, "certificate-authority", base_dir);

    const std::string user_name = scalar(ctx, "user");
    if (!user_name.empty()) {
      const YAML::Node user = findNamed(root, "users", user_name, "user");
      if (user["exec"] || user["auth-provider"]) {
        throw ConfigError("user " + user_name +
                          ": exec and auth-provider credential plugins are not supported; "
                          "use a client certificate or a token");
      }
      cfg.client_cert_pem = pemField(user, "client-certificate", base_dir);
      cfg.client_key_pem = pemField(user, "client-key", base_dir);
      if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
        throw ConfigError("user " + user_name +
                          ": client certificate and key must be given together");
      }
      cfg.token = scalar(user, "token");
      const std::string token_file = scalar(user, "tokenFile");
      if (!token_file.empty()) cfg.token_file = resolve(base_dir, token_file).string();
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string("malformed kubeconfig: ") + e.what());
  }
  return cfg;
}

UpstreamConfig loadKubeconfig(const std::filesystem::path& path, const std::string& context) {
  const std::string text = readFile(path, "kubeconfig");
  try {
    return parseKubeconfig(text, path.parent_path(), context);
  } catch (const ConfigError& e) {
    throw ConfigError(path.string() + ": " + e.what());
  }
}

std::optional<UpstreamConfig> inClusterConfig(const std::filesystem::path& secrets_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') return std::nullopt;
  UpstreamConfig cfg;
  const std::string h(host);
  // An IPv6 service address needs brackets in a URL.
  cfg.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  cfg.token_file = (secrets_dir / "token").string();
  cfg.token = readFile(cfg.token_file, "in-cluster service-account token");
  while (!cfg.token.empty() && std::isspace(static_cast<unsigned char>(cfg.token.back()))) {
    cfg.token.pop_back();
  }
  cfg.ca_pem = readFile(secrets_dir / "ca.crt", "in-cluster CA");
  return cfg;
}

}  // namespace kcp::config
