// The query parameters of a LIST or WATCH (metav1.ListOptions), read as
// kube-apiserver reads them, for deciding whether the cache can answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kcp::proxy {

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;        // "" when unset: a consistent read
  std::string resource_version_match;  // "", "NotOlderThan" or "Exact"
  int64_t limit = 0;                   // 0: no limit
  std::string continue_token;
  bool watch = false;
  bool allow_watch_bookmarks = false;
  std::optional<int64_t> timeout_seconds;
  std::optional<bool> send_initial_events;
};

// Parses a request's query. nullopt when it has a parameter that changes the
// answer in a way the cache does not reproduce (pretty, anything unknown) or
// a value kube-apiserver would refuse: such requests are forwarded.
std::optional<ListOptions> parseListOptions(std::string_view query);

}  // namespace kcp::proxy
