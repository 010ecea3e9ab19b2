#include "proxy/ops/audit.h"

#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "config/kubeconfig.h"

namespace kcp::proxy::audit {
namespace {

int g_fd = -1;

}  // namespace

void open(const std::string& path) {
  g_fd = path == "-" ? STDOUT_FILENO
                     : ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (g_fd < 0) throw config::ConfigError("--audit-log-path " + path + ": " + std::strerror(errno));
}

bool enabled() {
  return g_fd >= 0;
}

void cachedRead(const RequestInfo& info, std::string_view decision, int code, uint64_t bytes) {
  if (g_fd < 0) return;
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, long(tv.tv_usec));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto field = [&w](const char* key, std::string_view value) {
    w.Key(key);
    w.String(value.data(), rapidjson::SizeType(value.size()));
  };
  w.StartObject();
  field("ts", stamp);
  field("user", info.user);
  if (!info.impersonator.empty()) field("impersonatedBy", info.impersonator);
  field("verb", info.verb);
  if (!info.api_group.empty()) field("group", info.api_group);
  field("resource", info.resource);
  if (!info.namespace_.empty()) field("namespace", info.namespace_);
  if (!info.name.empty()) field("name", info.name);
  field("decision", decision);
  w.Key("code");
  w.Int(code);
  w.Key("bytes");
  w.Uint64(bytes);
  w.EndObject();
  std::string line(buf.GetString(), buf.GetSize());
  line += '\n';
  // One write per line, so that lines from several threads never interleave.
  while (::write(g_fd, line.data(), line.size()) < 0 && errno == EINTR) {
  }
}

}  // namespace kcp::proxy::audit
