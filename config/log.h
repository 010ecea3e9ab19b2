// Process-wide logging, klog-style text (the format kube components write) or
// one JSON object per line. Thread-safe: each line is one write(2).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace kcp::log {

enum class Format { kText, kJson };

// Sets the verbosity (-v) and format; call once at start-up, before threads.
void configure(int verbosity, Format format);

// True when messages at verbosity `v` are written (info only; warnings and
// errors always are).
bool enabled(int v);

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

void info(std::string_view message, Fields fields = {});
// Info at a verbosity level: written only with -v=N or higher.
void verbose(int v, std::string_view message, Fields fields = {});
void warning(std::string_view message, Fields fields = {});
void error(std::string_view message, Fields fields = {});

}  // namespace kcp::log
