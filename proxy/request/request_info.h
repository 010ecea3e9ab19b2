// What kube-apiserver's RequestInfoFactory derives from a request's method,
// path and query: verb, API group/version, resource, namespace, name,
// subresource. Used for routing, metrics and logs.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kcp::proxy {

struct RequestInfo {
  bool is_resource_request = false;
  std::string verb;  // get, list, watch, create, update, patch, delete, deletecollection; or the
                     // lower-case method for non-resource requests
  std::string api_prefix;  // "api" or "apis"
  std::string api_group;   // "" for the core group
  std::string api_version;
  std::string namespace_;
  std::string resource;
  std::string subresource;
  std::string name;
  std::string path;  // without the query
  // A list, watch or deletecollection's raw selectors, which kube-apiserver
  // hands its authorizers (not for the deprecated /watch/ paths).
  std::string field_selector;
  std::string label_selector;
  // Who the request acts as, once known (the router and the auth check set
  // it): for the audit log.
  std::string user;
  std::string impersonator;  // who asked to act as `user`, when impersonating
};

// Decodes %XX escapes (and '+' as a space in query components, as Go's
// url.ParseQuery does); returns false on a bad escape.
bool percentDecode(std::string_view in, std::string& out, bool plus_is_space);

// Calls `fn(key, value)` for each query parameter, decoded, in order, until
// it returns false. A parameter with a bad escape is skipped, as Go's
// URL.Query() (which kube-apiserver reads) skips it; the result is then false.
bool forEachQueryParam(std::string_view query,
                       const std::function<bool(const std::string&, const std::string&)>& fn);

// Finds a query parameter's decoded value; returns false when absent.
bool queryParam(std::string_view query, std::string_view key, std::string& value);

// Parses method + request target ("/api/v1/namespaces/a/pods?watch=1").
RequestInfo parseRequestInfo(std::string_view method, std::string_view target);

}  // namespace kcp::proxy
