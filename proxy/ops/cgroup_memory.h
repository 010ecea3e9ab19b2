#pragma once
// The memory limit the kernel enforces on this process: its container's limit
// (resources.limits.memory), from the cgroup it runs in. Exported as
// kube_cache_proxy_memory_limit_bytes so that an alert can compare the
// resident memory with it without kube-state-metrics.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kcp::proxy {

// Reads a whole file; nullopt when it cannot be read.
using ReadFile = std::function<std::optional<std::string>(const std::string& path)>;

// The lowest memory limit on the cgroup named in `proc_self_cgroup` (the text
// of /proc/self/cgroup) and its ancestors, read below `mount` (/sys/fs/cgroup):
// cgroup v2's memory.max, or v1's memory/memory.limit_in_bytes. A container
// that sees its own cgroup as the root (cgroup namespace) reads it there.
// nullopt when no limit is set ("max", v1's near-2^63) or none is readable.
std::optional<uint64_t> cgroupMemoryLimit(std::string_view proc_self_cgroup,
                                          const std::string& mount, const ReadFile& read);

// The same for this process, from the real files.
std::optional<uint64_t> ownMemoryLimit();

}  // namespace kcp::proxy
