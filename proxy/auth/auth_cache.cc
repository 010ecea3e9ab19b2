#include "proxy/auth/auth_cache.h"

#include <openssl/sha.h>

namespace kcp::proxy {
namespace {

constexpr size_t kMaxEntries = 100000;  // per map; beyond it, expired entries go, then all
constexpr const char* kSelfKey =
    "";  // the proxy's own user among the tokens (a digest is never empty)

std::string digest(const std::string& token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

}  // namespace

template <typename T>
std::optional<T> AuthCache::lookup(std::unordered_map<std::string, Entry<T>>& map,
                                   const std::string& key) {
  const auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  if (it->second.expires <= Clock::now()) {
    map.erase(it);
    return std::nullopt;
  }
  return it->second.value;
}

template <typename T>
void AuthCache::insert(std::unordered_map<std::string, Entry<T>>& map, const std::string& key,
                       T value, std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return;
  const auto now = Clock::now();
  if (map.size() >= kMaxEntries) {
    std::erase_if(map, [now](const auto& e) { return e.second.expires <= now; });
    if (map.size() >= kMaxEntries) map.clear();  // bounded memory over a perfect cache
  }
  map[key] = Entry<T>{std::move(value), now + ttl};
}

std::optional<UserInfo> AuthCache::token(const std::string& token) {
  std::lock_guard lock(mu_);
  return lookup(tokens_, digest(token));
}

void AuthCache::putToken(const std::string& token, const UserInfo& user) {
  std::lock_guard lock(mu_);
  insert(tokens_, digest(token), user,
         user.name.empty() ? ttls_.unauthenticated : ttls_.authenticated);
}

std::optional<UserInfo> AuthCache::self() {
  std::lock_guard lock(mu_);
  return lookup(tokens_, kSelfKey);
}

void AuthCache::putSelf(const UserInfo& user) {
  std::lock_guard lock(mu_);
  insert(tokens_, kSelfKey, user, ttls_.authenticated);
}

std::optional<ReviewAnswer> AuthCache::decision(const std::string& key) {
  std::lock_guard lock(mu_);
  return lookup(decisions_, key);
}

void AuthCache::putDecision(const std::string& key, const ReviewAnswer& answer) {
  std::lock_guard lock(mu_);
  insert(decisions_, key, answer, answer.allowed ? ttls_.allowed : ttls_.denied);
}

int AuthCache::preferredMode(const std::string& requestor) {
  std::lock_guard lock(mu_);
  const auto it = modes_.find(requestor);
  return it == modes_.end() ? -1 : it->second;
}

void AuthCache::setPreferredMode(const std::string& requestor, int mode) {
  std::lock_guard lock(mu_);
  if (modes_.size() >= kMaxEntries && !modes_.contains(requestor))
    modes_.clear();  // only an ordering hint
  modes_[requestor] = mode;
}

}  // namespace kcp::proxy
