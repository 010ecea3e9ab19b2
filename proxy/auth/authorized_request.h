// Who a client is and whether it may do what the proxy would do for it:
// kube-apiserver decides, the proxy asks it (TokenReview, SelfSubjectReview,
// SubjectAccessReview) and remembers the answers for a while, as
// kube-apiserver's own webhook authenticator and authorizer do. A cached
// read is served only when kube-apiserver would allow the same request to
// the same user, impersonation included; when the proxy cannot be sure, the
// request goes to kube-apiserver as the client sent it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "encoder/status.h"
#include "proxy/auth/access_review.h"
#include "proxy/auth/auth_cache.h"
#include "proxy/auth/identity.h"
#include "proxy/auth/impersonation.h"
#include "proxy/handlers/deferred_handler.h"
#include "proxy/net/upstream_pool.h"
#include "proxy/request/request_info.h"

namespace kcp::proxy {

class ProxyCredentials;

// A request held until kube-apiserver has said who the client is, whom it
// may act as (Impersonate-* headers) and, when asked, that this user may make
// it; then `decided` makes the real handler. Refusals are kube-apiserver's
// 401/403 Status. Whatever the proxy cannot decide exactly (a failed review,
// an impersonation refused or ambiguous, an authorizer's evaluation error)
// goes to kube-apiserver as the client sent it, unless only the proxy can
// check it (`proxy_decides`: a certificate user impersonating, whose request
// reaches kube-apiserver as the proxy's).
class AuthorizedRequest : public DeferredHandler, public UpstreamStreamHandler {
 public:
  struct Checks {
    Identity identity;  // kToken: authenticated first; kProxy: the proxy's own user, if needed
    std::optional<WantedUser> impersonate;  // the user the request asks to act as
    bool proxy_decides = false;
    bool authorize = true;  // also authorize the request itself for the (impersonated) user
  };
  // `allowed`: `as` may make the request. Otherwise it is forwarded: as the
  // client sent it, or (`proxy_decides`) impersonating `as`.
  using Decided = std::function<RequestHandlerPtr(bool allowed, const UserInfo& as)>;
  // The reviews go on `pool` with `credentials`; refusals are in protobuf
  // when `protobuf_status` (the client takes protobuf first).
  AuthorizedRequest(UpstreamPool& pool, ProxyCredentials& credentials, AuthCache& cache,
                    Checks checks, RequestInfo info, bool protobuf_status, DownstreamStream& stream,
                    Decided decided);
  ~AuthorizedRequest() override;

  void onUpstreamResponse(const ResponseHead& head, bool end_stream) override;
  void onUpstreamData(const uint8_t* data, size_t len) override;
  void onUpstreamComplete() override;
  void onUpstreamError(const std::string& reason) override;
  size_t requestBodyReady(bool* eof) override;
  void pullRequestBody(evbuffer* out, size_t n) override;

 private:
  enum class Step { kTokenReview, kSelfReview, kAccessReview };
  void next();  // the next step: authenticate, check impersonation, authorize, or answer
  std::optional<ReviewAnswer> answered(const AccessAttributes& a);
  void review(Step step, const std::string& path, std::string body);
  void fail(const encoder::Status& status);
  void forwardAsSent();
  void abandon() override;

  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  AuthCache& cache_;
  Checks checks_;
  RequestInfo info_;
  bool protobuf_status_;
  DownstreamStream& stream_;
  Decided decided_;
  std::optional<UserInfo> requestor_;            // once authenticated
  std::optional<UserInfo> acting_;               // once impersonation (if any) is allowed
  std::map<std::string, ReviewAnswer> answers_;  // this request's, whatever the cache keeps
  Step step_ = Step::kTokenReview;
  std::string review_key_;  // the access review in flight
  UpstreamStream* review_ = nullptr;
  std::string review_body_;  // sent
  size_t review_sent_ = 0;
  int review_status_ = 0;
  std::string review_answer_;
};

}  // namespace kcp::proxy
