#include "proxy/ops/cgroup_memory.h"

#include <catch2/catch.hpp>
#include <map>

using kcp::proxy::cgroupMemoryLimit;

namespace {

kcp::proxy::ReadFile files(std::map<std::string, std::string> f) {
  return [f = std::move(f)](const std::string& path) -> std::optional<std::string> {
    const auto it = f.find(path);
    if (it == f.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("cgroup v2: the container's memory.max, in its own namespace or at its host path") {
  // A pod with resources.limits.memory 2Gi and a cgroup namespace: its cgroup is the root.
  CHECK(cgroupMemoryLimit("0::/\n", "/sys/fs/cgroup",
                          files({{"/sys/fs/cgroup/memory.max", "2147483648\n"}})) == 2147483648);
  // Without a namespace: the path from /proc/self/cgroup, the lowest of it and its parents.
  const auto host = files({{"/c/kubepods/pod1/ctr/memory.max", "max\n"},
                           {"/c/kubepods/pod1/memory.max", "1073741824\n"},
                           {"/c/kubepods/memory.max", "8589934592\n"}});
  CHECK(cgroupMemoryLimit("0::/kubepods/pod1/ctr\n", "/c", host) == 1073741824);
  // Nothing set anywhere: no limit.
  CHECK_FALSE(
      cgroupMemoryLimit("0::/user.slice\n", "/c", files({{"/c/user.slice/memory.max", "max\n"}}))
          .has_value());
}

TEST_CASE("cgroup v1: memory.limit_in_bytes of the memory controller's hierarchy") {
  const std::string self =
      "12:pids:/docker/abc\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n";
  CHECK(cgroupMemoryLimit(self, "/c",
                          files({{"/c/memory/docker/abc/memory.limit_in_bytes", "536870912\n"}})) ==
        536870912);
  // Seen from inside the container: its cgroup mounted as the hierarchy's root.
  CHECK(cgroupMemoryLimit(
            self, "/c", files({{"/c/memory/memory.limit_in_bytes", "536870912\n"}})) == 536870912);
  // v1 says "unlimited" with the largest page-aligned int64.
  CHECK_FALSE(cgroupMemoryLimit(
                  self, "/c", files({{"/c/memory/memory.limit_in_bytes", "9223372036854771712\n"}}))
                  .has_value());
  // Controllers listed together ("memory,hugetlb") count too.
  CHECK(cgroupMemoryLimit("3:hugetlb,memory:/x\n", "/c",
                          files({{"/c/memory/x/memory.limit_in_bytes", "4096"}})) == 4096);
}

TEST_CASE("cgroup: unreadable or malformed files are no limit") {
  CHECK_FALSE(cgroupMemoryLimit("", "/c", files({})).has_value());
  CHECK_FALSE(cgroupMemoryLimit("garbage without colons\n::\n", "/c", files({})).has_value());
  CHECK_FALSE(
      cgroupMemoryLimit("0::/a\n", "/c", files({{"/c/a/memory.max", "12k\n"}})).has_value());
  CHECK_FALSE(cgroupMemoryLimit("0::/a\n", "/c", files({{"/c/a/memory.max", ""}})).has_value());
  CHECK_FALSE(cgroupMemoryLimit("0::/../..\n", "/c", files({})).has_value());
}
