// What kube-apiserver said about who clients are and what they may do,
// remembered for a while as its own webhook authenticator and authorizer do.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/auth/access_review.h"
#include "proxy/auth/impersonation.h"

namespace kcp::proxy {

// TokenReview, SelfSubjectReview and SubjectAccessReview answers, shared by
// every worker, bounded in size. Tokens are kept as SHA-256 digests.
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

  // The proxy's own user (SelfSubjectReview), kept as long as a token's.
  std::optional<UserInfo> self();
  void putSelf(const UserInfo& user);

  // Keyed by accessKey().
  std::optional<ReviewAnswer> decision(const std::string& key);
  void putDecision(const std::string& key, const ReviewAnswer& answer);

  // The impersonation mode that last allowed `requestor`, or -1 (kube-apiserver
  // tries it first; remembered for the requests only the proxy can check).
  int preferredMode(const std::string& requestor);
  void setPreferredMode(const std::string& requestor, int mode);

 private:
  using Clock = std::chrono::steady_clock;
  template <typename T>
  struct Entry {
    T value;
    Clock::time_point expires;
  };
  template <typename T>
  static std::optional<T> lookup(std::unordered_map<std::string, Entry<T>>& map,
                                 const std::string& key);
  template <typename T>
  static void insert(std::unordered_map<std::string, Entry<T>>& map, const std::string& key,
                     T value, std::chrono::milliseconds ttl);

  Ttls ttls_;
  const std::vector<std::string> audiences_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry<UserInfo>> tokens_;
  std::unordered_map<std::string, Entry<ReviewAnswer>> decisions_;
  std::unordered_map<std::string, int> modes_;  // bounded like the maps above
};

}  // namespace kcp::proxy
