// Impersonation as kube-apiserver 1.37 decides it (its impersonation filter,
// with ConstrainedImpersonation, beta and on): a request's Impersonate-User,
// -Group, -Uid and -Extra-* headers name the user it wants to act as; the
// requesting user must be allowed that by one of five modes, tried in order:
// associated-node, arbitrary-node, serviceaccount, user-info (each first asks
// "impersonate-on:<mode>:<verb>" for the request itself, then
// "impersonate:<mode>" for the user's name, uid, groups and extra) and legacy
// (verb "impersonate" per field). The first mode that allows wins and shapes
// the user (a node gets group system:nodes only in the node modes).
//
// Pure logic, driven by the caller: `decideImpersonation` runs the modes with
// the SubjectAccessReview answers known so far and either needs one more
// review or has decided. No event loop: unit tests drive it directly.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "encoder/status.h"
#include "proxy/auth/access_review.h"
#include "proxy/request/http.h"

namespace kcp::proxy {

// The user a request asks to act as, read from its headers as kube-apiserver
// reads them (the first Impersonate-User and -Uid; every -Group; each
// -Extra-<key> unescaped and lower-cased).
struct WantedUser {
  std::string name, uid;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::vector<std::string>>> extra;  // in header order
};

struct ImpersonationHeaders {
  bool present = false;                    // some Impersonate-User/-Group/-Uid/-Extra-* header
  std::optional<encoder::Status> invalid;  // kube-apiserver's 400 (e.g. a group without a user)
  WantedUser wanted;                       // when present and valid
};
ImpersonationHeaders readImpersonationHeaders(const Headers& headers);

// Whether a header is one kube-apiserver reads for impersonation.
bool isImpersonationHeader(std::string_view lower_name);

// The headers that make kube-apiserver impersonate exactly `user` (every
// group named, so that no mode adds or replaces any).
Headers impersonationHeadersFor(const UserInfo& user);

// A SubjectAccessReview answer.
struct ReviewAnswer {
  bool allowed = false;
  std::string reason;
  std::string evaluation_error;
};

struct ImpersonationDecision {
  enum class Kind {
    kNeedReview,    // ask kube-apiserver about `review`, then decide again
    kImpersonated,  // act as `user`; `mode` allowed it
    kRefused,       // `refusal` is kube-apiserver's 403
    kAmbiguous,     // more than one mode allows, with different users: which one
                    // kube-apiserver picks depends on its own recent history
  };
  Kind kind = Kind::kNeedReview;
  AccessAttributes review;
  UserInfo user;
  int mode = -1;
  encoder::Status refusal;
};

// The modes, in kube-apiserver's order; `preferred_mode` (the one that last
// allowed this requestor, or -1) is tried first, as kube-apiserver does.
// `request` is what the impersonated user would do (its `user` unused).
// With `unambiguous`, a node allowed by a node mode is also checked against
// legacy impersonation: both allowing gives kAmbiguous.
ImpersonationDecision decideImpersonation(
    const UserInfo& requestor, const WantedUser& wanted, const AccessAttributes& request,
    int preferred_mode, bool unambiguous,
    const std::function<std::optional<ReviewAnswer>(const AccessAttributes&)>& answered);

}  // namespace kcp::proxy
