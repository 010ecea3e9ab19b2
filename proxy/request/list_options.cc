#include "proxy/request/list_options.h"

#include <charconv>
#include <set>

#include "proxy/request/request_info.h"

namespace kcp::proxy {
namespace {

bool parseBool(const std::string& v, bool& out) {
  // What kube-apiserver's query conversion accepts (strconv.ParseBool).
  if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True") {
    out = true;
  } else if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False") {
    out = false;
  } else {
    return false;
  }
  return true;
}

bool parseInt(const std::string& v, int64_t& out) {
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return !v.empty() && ec == std::errc() && end == v.data() + v.size();
}

}  // namespace

std::optional<ListOptions> parseListOptions(std::string_view query) {
  ListOptions o;
  bool ok = true;
  std::set<std::string> seen;
  const bool decoded =
      forEachQueryParam(query, [&](const std::string& key, const std::string& value) {
        if (!seen.insert(key).second) {
          ok = false;  // kube-apiserver reads the first of repeated values; rare enough to forward
        } else if (key == "labelSelector") {
          o.label_selector = value;
        } else if (key == "fieldSelector") {
          o.field_selector = value;
        } else if (key == "resourceVersion") {
          o.resource_version = value;
        } else if (key == "resourceVersionMatch") {
          o.resource_version_match = value;
        } else if (key == "continue") {
          o.continue_token = value;
        } else if (key == "limit") {
          ok = parseInt(value, o.limit);
        } else if (key == "watch") {
          ok = parseBool(value, o.watch);
        } else if (key == "allowWatchBookmarks") {
          ok = parseBool(value, o.allow_watch_bookmarks);
        } else if (key == "sendInitialEvents") {
          bool b = false;
          ok = parseBool(value, b);
          if (ok) o.send_initial_events = b;
        } else if (key == "timeoutSeconds") {
          int64_t t = 0;
          ok = parseInt(value, t);
          if (ok) o.timeout_seconds = t;
        } else if (key != "timeout") {
          ok = false;  // pretty, or a parameter this version does not know
        }
        return ok;
      });
  if (!decoded || !ok) return std::nullopt;
  return o;
}

}  // namespace kcp::proxy
