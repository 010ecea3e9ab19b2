// Who a client is and whether it may read what the cache would serve it
// (--auth-mode=delegate): kube-apiserver decides both, the proxy asks it
// (TokenReview, SubjectAccessReview) and remembers the answers for a while,
// as kube-apiserver's own webhook authenticator and authorizer do. A cached
// read is served only when kube-apiserver would allow the same request to
// the same user; otherwise the client gets kube-apiserver's 401 or 403.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "encoder/status.h"
#include "proxy/deferred_handler.h"
#include "proxy/request_info.h"
#include "proxy/upstream.h"

namespace kcp::proxy {

class ProxyCredentials;

struct UserInfo {
  std::string name, uid;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::vector<std::string>>> extra;  // sorted by key
};

// How a request is identified.
struct Identity {
  enum class Kind {
    kProxy,            // acts as the proxy (cleartext loopback listener, trust-local mode)
    kToken,            // a bearer token, authenticated by TokenReview when the cache answers
    kUser,             // a verified client certificate, or system:anonymous
    kOwnCredentials,   // credentials the proxy does not read (not a bearer token): forwarded as they are
    kUnauthenticated,  // nothing, and anonymous requests are refused: 401
  };
  Kind kind = Kind::kProxy;
  std::string token;
  UserInfo user;
};

// kube-apiserver's 401 and 403 Status for a request, in the encoding the client takes.
encoder::Status unauthorizedStatus();
encoder::Status forbiddenStatus(const RequestInfo& info, const std::string& user, const std::string& reason);

// TokenReview and SubjectAccessReview answers, shared by every worker,
// bounded in size. Tokens are kept as SHA-256 digests.
class AuthCache {
 public:
  struct Ttls {
    std::chrono::milliseconds authenticated, unauthenticated, allowed, denied;
  };
  // `audiences`: what TokenReviews ask tokens to be meant for (empty:
  // kube-apiserver's own audiences).
  explicit AuthCache(Ttls ttls, std::vector<std::string> audiences = {})
      : ttls_(ttls), audiences_(std::move(audiences)) {}
  const std::vector<std::string>& audiences() const { return audiences_; }

  // nullopt: not cached; an empty UserInfo name: the token was refused.
  std::optional<UserInfo> token(const std::string& token);
  void putToken(const std::string& token, const UserInfo& user);

  struct Decision {
    bool allowed = false;
    std::string reason;  // the authorizer's, for the 403 message
  };
  std::optional<Decision> decision(const std::string& key);
  void putDecision(const std::string& key, const Decision& decision);

  // The decision key of `user` doing `info` (verb, resource, namespace, name).
  static std::string decisionKey(const UserInfo& user, const RequestInfo& info);

 private:
  using Clock = std::chrono::steady_clock;
  template <typename T>
  struct Entry {
    T value;
    Clock::time_point expires;
  };
  template <typename T>
  static std::optional<T> lookup(std::unordered_map<std::string, Entry<T>>& map, const std::string& key);
  template <typename T>
  static void insert(std::unordered_map<std::string, Entry<T>>& map, const std::string& key, T value,
                     std::chrono::milliseconds ttl);

  Ttls ttls_;
  const std::vector<std::string> audiences_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry<UserInfo>> tokens_;
  std::unordered_map<std::string, Entry<Decision>> decisions_;
};

// A read the cache would answer, held until kube-apiserver has said who the
// client is and that it may: then `allowed` makes the real handler (from
// the cache, or forwarded), else 401/403 as kube-apiserver. If a review
// fails, `forward` sends the request upstream with the client's identity,
// where kube-apiserver decides.
class AuthorizedRead : public DeferredHandler, public UpstreamStreamHandler {
 public:
  // Called with the request as the authenticated user makes it.
  using Allowed = std::function<RequestHandlerPtr(const RequestInfo& as_user)>;
  using Forward = std::function<RequestHandlerPtr()>;
  // The reviews go on `pool` with `credentials`; refusals are in protobuf
  // when `protobuf_status` (the client takes protobuf first).
  AuthorizedRead(UpstreamPool& pool, ProxyCredentials& credentials, AuthCache& cache, Identity identity,
                 RequestInfo info, bool protobuf_status, DownstreamStream& stream, Allowed allowed, Forward forward);
  ~AuthorizedRead() override;

  void onUpstreamResponse(const ResponseHead& head, bool end_stream) override;
  void onUpstreamData(const uint8_t* data, size_t len) override;
  void onUpstreamComplete() override;
  void onUpstreamError(const std::string& reason) override;
  size_t requestBodyReady(bool* eof) override;
  void pullRequestBody(evbuffer* out, size_t n) override;

 private:
  void next();  // the next step: authenticate, authorize, or answer
  void review(const std::string& path, std::string body);
  void fail(const encoder::Status& status);
  void abandon() override;

  UpstreamPool& pool_;
  ProxyCredentials& credentials_;
  AuthCache& cache_;
  Identity identity_;
  RequestInfo info_;
  bool protobuf_status_;
  DownstreamStream& stream_;
  Allowed allowed_;
  Forward forward_;
  enum class Step { kTokenReview, kAccessReview } step_ = Step::kTokenReview;
  UpstreamStream* review_ = nullptr;
  std::string review_body_;  // sent
  size_t review_sent_ = 0;
  int review_status_ = 0;
  std::string review_answer_;
};

}  // namespace kcp::proxy
