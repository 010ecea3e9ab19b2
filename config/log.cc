#include "config/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace kcp::log {
namespace {

std::atomic<int> g_verbosity{0};
std::atomic<Format> g_format{Format::kText};

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// klog quotes values that contain spaces or quotes, so lines stay parseable.
void appendTextValue(std::string& out, std::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\n\t") == std::string_view::npos) {
    out += s;
  } else {
    appendJsonString(out, s);
  }
}

void write(char severity, int v, std::string_view message, Fields fields) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  std::string line;
  line.reserve(128 + message.size());
  char stamp[64];
  if (g_format.load(std::memory_order_relaxed) == Format::kJson) {
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, long(tv.tv_usec));
    line += R"({"ts":")";
    line += stamp;
    line += R"(","level":")";
    line += severity == 'E' ? "error" : severity == 'W' ? "warning" : "info";
    line += R"(","v":)" + std::to_string(v) + R"(,"msg":)";
    appendJsonString(line, message);
    for (const auto& [key, value] : fields) {
      line += ',';
      appendJsonString(line, key);
      line += ':';
      appendJsonString(line, value);
    }
    line += "}\n";
  } else {
    std::snprintf(stamp, sizeof stamp, "%c%02d%02d %02d:%02d:%02d.%06ld %7d] ", severity,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, long(tv.tv_usec),
                  int(getpid()));
    line += stamp;
    appendTextValue(line, message);
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += key;
      line += '=';
      appendTextValue(line, value);
    }
    line += '\n';
  }
  // One write per line keeps concurrent lines whole; a failed log write has
  // nowhere better to be reported.
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

void configure(int verbosity, Format format) {
  g_verbosity = verbosity;
  g_format = format;
}

bool enabled(int v) {
  return v <= g_verbosity.load(std::memory_order_relaxed);
}

void info(std::string_view message, Fields fields) {
  write('I', 0, message, fields);
}
void verbose(int v, std::string_view message, Fields fields) {
  if (enabled(v)) write('I', v, message, fields);
}
void warning(std::string_view message, Fields fields) {
  write('W', 0, message, fields);
}
void error(std::string_view message, Fields fields) {
  write('E', 0, message, fields);
}

}  // namespace kcp::log
