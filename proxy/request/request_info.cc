#include "proxy/request/request_info.h"

#include <vector>

namespace kcp::proxy {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> splitPath(std::string_view path) {  // NOLINT
  std::vector<std::string_view> parts;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  size_t start = 0;
  while (start <= path.size() && !path.empty()) {
    const size_t slash = path.find('/', start);
    parts.push_back(path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

bool percentDecode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += char(hi * 16 + lo);
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out += ' ';  // query strings: Go's url.ParseQuery turns '+' into a space
    } else {
      out += in[i];
    }
  }
  return true;
}

bool forEachQueryParam(std::string_view query,
                       const std::function<bool(const std::string&, const std::string&)>& fn) {
  std::string key, value;
  bool all_good = true;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (!percentDecode(pair.substr(0, eq), key, true) ||
        !percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                       value, true)) {
      all_good = false;  // like Go's URL.Query(): skip the pair, keep the rest
      continue;
    }
    if (!fn(key, value)) break;
  }
  return all_good;
}

bool queryParam(std::string_view query, std::string_view key, std::string& value) {
  bool found = false;
  // A bad pair elsewhere does not hide this one, so the result is ignored.
  forEachQueryParam(query, [&](const std::string& k, const std::string& v) {
    if (k != key) return true;
    value = v;
    found = true;
    return false;
  });
  return found;
}

static bool parseGoBool(std::string_view v) {
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

RequestInfo parseRequestInfo(std::string_view method, std::string_view target) {
  RequestInfo info;
  const size_t q = target.find('?');
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  // Like Go's URL.Path, the path is decoded before it is split.
  std::string path;
  if (!percentDecode(target.substr(0, q), path, false)) path = std::string(target.substr(0, q));
  info.path = path;
  for (const char c : method) info.verb += char(c >= 'A' && c <= 'Z' ? c + 32 : c);
  const std::string lower_method = info.verb;

  auto parts = splitPath(path);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.api_prefix = std::string(parts[0]);
  if (parts[0] == "api") {
    if (parts.size() < 3) return info;  // /api, /api/v1: discovery
    info.api_version = std::string(parts[1]);
    parts.erase(parts.begin(), parts.begin() + 2);
  } else {
    if (parts.size() < 4) return info;  // /apis, /apis/g, /apis/g/v: discovery
    info.api_group = std::string(parts[1]);
    info.api_version = std::string(parts[2]);
    parts.erase(parts.begin(), parts.begin() + 3);
  }
  info.is_resource_request = true;

  // The deprecated /watch/ path prefix.
  const bool verb_via_path = parts[0] == "watch";
  if (verb_via_path) {
    info.verb = "watch";
    parts.erase(parts.begin());
    if (parts.empty()) {
      info.is_resource_request = false;
      info.verb = lower_method;
      return info;
    }
  } else if (lower_method == "post") {
    info.verb = "create";
  } else if (lower_method == "get" || lower_method == "head") {
    info.verb = "get";
  } else if (lower_method == "put") {
    info.verb = "update";
  } else if (lower_method == "patch") {
    info.verb = "patch";
  } else if (lower_method == "delete") {
    info.verb = "delete";
  } else {
    info.verb = "";
  }

  if (parts[0] == "namespaces" && parts.size() > 1) {
    info.namespace_ = std::string(parts[1]);
    // /namespaces/{ns}/{resource}/...; but /namespaces/{ns}/status and
    // /finalize are subresources of the namespace itself.
    if (parts.size() > 2 && parts[2] != "status" && parts[2] != "finalize") {
      parts.erase(parts.begin(), parts.begin() + 2);
    }
  }
  info.resource = std::string(parts[0]);
  if (parts.size() >= 2) info.name = std::string(parts[1]);
  if (parts.size() >= 3) info.subresource = std::string(parts[2]);

  // A list or watch of one object by name (metadata.name field selector)
  // authorizes as that name, as in kube-apiserver.
  if (info.name.empty() && info.verb == "get") {
    std::string watch;
    info.verb = queryParam(query, "watch", watch) && parseGoBool(watch) ? "watch" : "list";
    std::string fs;
    if (queryParam(query, "fieldSelector", fs)) {
      std::string_view rest = fs;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view term = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        for (const std::string_view prefix : {"metadata.name==", "metadata.name="}) {
          if (term.starts_with(prefix)) {
            const std::string_view name = term.substr(prefix.size());
            if (!name.empty() && name != "." && name != ".." &&
                name.find('/') == std::string_view::npos &&
                name.find('%') == std::string_view::npos) {
              info.name = std::string(name);
            }
            break;
          }
        }
      }
    }
  }
  if (info.name.empty() && info.verb == "delete") info.verb = "deletecollection";
  if (!verb_via_path &&
      (info.verb == "list" || info.verb == "watch" || info.verb == "deletecollection")) {
    queryParam(query, "fieldSelector", info.field_selector);
    queryParam(query, "labelSelector", info.label_selector);
  }
  return info;
}

}  // namespace kcp::proxy
