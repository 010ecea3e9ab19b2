#include "proxy/ops/cgroup_memory.h"

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace kcp::proxy {
namespace {

// v1 writes "no limit" as the largest page-aligned int64; anything this
// large is no limit a machine could reach.
constexpr uint64_t kUnlimited = uint64_t(1) << 60;

std::optional<uint64_t> parseLimit(std::optional<std::string> text) {
  if (!text) return std::nullopt;
  std::string_view v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n >= kUnlimited) return std::nullopt;
  return n;
}

// The lowest limit in `file` of the cgroup at `path` below `root` and of its
// ancestors, the root included (a container without a cgroup namespace sees
// its own cgroup mounted as the root, and its host path missing).
std::optional<uint64_t> lowestUpTo(const std::string& root, std::string_view path, const char* file,
                                   const ReadFile& read) {
  std::optional<uint64_t> lowest;
  std::string dir(path);
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  for (;;) {
    if (dir.find("/..") == std::string::npos) {
      if (auto n = parseLimit(read(root + dir + "/" + file)); n && (!lowest || *n < *lowest)) {
        lowest = n;
      }
    }
    if (dir.empty()) break;
    dir.resize(dir.rfind('/'));
  }
  return lowest;
}

}  // namespace

std::optional<uint64_t> cgroupMemoryLimit(std::string_view proc_self_cgroup,
                                          const std::string& mount, const ReadFile& read) {
  std::optional<std::string_view> v2_path, v1_path;
  while (!proc_self_cgroup.empty()) {
    const size_t nl = proc_self_cgroup.find('\n');
    std::string_view line = proc_self_cgroup.substr(0, nl);
    proc_self_cgroup.remove_prefix(nl == std::string_view::npos ? proc_self_cgroup.size() : nl + 1);
    // hierarchy-ID:controller-list:path
    const size_t a = line.find(':'), b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (line.substr(0, a) == "0" && controllers.empty()) v2_path = path;
    std::string_view rest = controllers;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      if (rest.substr(0, comma) == "memory") v1_path = path;
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
    }
  }
  // A v1 memory controller wins: on a hybrid host v2's hierarchy has no memory.max.
  if (v1_path) return lowestUpTo(mount + "/memory", *v1_path, "memory.limit_in_bytes", read);
  if (v2_path) return lowestUpTo(mount, *v2_path, "memory.max", read);
  return std::nullopt;
}

std::optional<uint64_t> ownMemoryLimit() {
  const ReadFile read = [](const std::string& path) -> std::optional<std::string> {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  const auto self = read("/proc/self/cgroup");
  return self ? cgroupMemoryLimit(*self, "/sys/fs/cgroup", read) : std::nullopt;
}

}  // namespace kcp::proxy
