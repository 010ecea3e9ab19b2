// The audit log (--audit-log-path): one JSON line per read the cache
// answered or refused, with who asked (the user kube-apiserver authenticated,
// or the proxy's own identity), what (verb, resource, namespace, name), the
// decision, the status code and the bytes sent. Forwarded requests are left
// to kube-apiserver's own audit log. A request that impersonates names the
// impersonated user, and who impersonated it in "impersonatedBy". Thread-safe: each line is one
// write(2) on a file opened for appending.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/request/request_info.h"

namespace kcp::proxy::audit {

// Opens the log: a file (appended to), or "-" for standard output. Call once
// at start-up, before threads; throws config::ConfigError when it cannot.
void open(const std::string& path);
bool enabled();

// `decision`: "allow" (served from the cache), "forbid" (403) or
// "unauthenticated" (401).
void cachedRead(const RequestInfo& info, std::string_view decision, int code, uint64_t bytes);

}  // namespace kcp::proxy::audit
