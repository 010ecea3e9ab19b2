// What kube-apiserver's authorizers see: a user and the attributes of what
// they do (authorizer.Attributes), written as the SubjectAccessReview the
// proxy sends to ask kube-apiserver, and kube-apiserver's 403 when the answer
// is no. Pure logic: no event loop, so unit tests drive it directly.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "encoder/status.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

// user.Info: who a request acts as.
struct UserInfo {
  std::string name, uid;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::vector<std::string>>> extra;  // sorted by key
  bool operator==(const UserInfo&) const = default;
};

// authorizer.Attributes: one question to kube-apiserver's authorizers.
struct AccessAttributes {
  UserInfo user;
  bool resource_request = true;
  std::string verb;
  // Resource requests.
  std::string group, version, resource, subresource, namespace_, name;
  std::string field_selector, label_selector;  // raw, as the request's query had them
  // Non-resource requests.
  std::string path;
};

// The attributes of `info` (a request as kube-apiserver's RequestInfo reads it) made by `user`.
AccessAttributes requestAttributes(const RequestInfo& info, const UserInfo& user);

// The SubjectAccessReview (authorization.k8s.io/v1) that asks about `a`, as JSON.
std::string subjectAccessReviewJson(const AccessAttributes& a);

// A key naming `a` exactly (no two different attribute sets share one), for
// the authorization cache.
std::string accessKey(const AccessAttributes& a);

// kube-apiserver's 403 for `a` refused with the authorizer's `reason`
// (responsewriters.ForbiddenStatusError).
encoder::Status forbiddenStatus(const AccessAttributes& a, const std::string& reason);

// Go's %q of a string (strconv.Quote), as kube-apiserver's messages quote names.
std::string goQuote(std::string_view s);

}  // namespace kcp::proxy
