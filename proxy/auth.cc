#include "proxy/auth.h"

#include <openssl/sha.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "config/log.h"
#include "proxy/audit.h"
#include "proxy/proxy_router.h"
#include "proxy/static_response.h"

namespace kcp::proxy {
namespace {

constexpr size_t kMaxEntries = 100000;       // per map; beyond it, expired entries go, then all
constexpr size_t kMaxReviewBody = 1 << 20;   // a TokenReview or SubjectAccessReview answer

std::string digest(const std::string& token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

// apiserver's responsewriters sanitize &, < and > in the forbidden message.
std::string sanitized(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string quoted(const std::string& s) {  // Go's %q for the plain strings of names
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(Writer& w, const std::string& s) { w.String(s.data(), rapidjson::SizeType(s.size())); }

}  // namespace

encoder::Status unauthorizedStatus() { return {401, "Unauthorized", "Unauthorized", {}}; }

encoder::Status forbiddenStatus(const RequestInfo& info, const std::string& user, const std::string& reason) {
  std::string message = "User " + quoted(user) + " cannot " + info.verb + " resource " + quoted(info.resource) +
                        " in API group " + quoted(info.api_group);
  message += info.namespace_.empty() ? " at the cluster scope" : " in the namespace " + quoted(info.namespace_);
  message = sanitized(message);
  if (!reason.empty()) message += ": " + reason;
  const std::string qualified = info.api_group.empty() ? info.resource : info.resource + "." + info.api_group;
  message = (info.name.empty() ? qualified : qualified + " " + quoted(info.name)) + " is forbidden: " + message;
  return {403, "Forbidden", message, {info.name, info.api_group, info.resource}};
}

template <typename T>
std::optional<T> AuthCache::lookup(std::unordered_map<std::string, Entry<T>>& map, const std::string& key) {
  const auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  if (it->second.expires <= Clock::now()) {
    map.erase(it);
    return std::nullopt;
  }
  return it->second.value;
}

template <typename T>
void AuthCache::insert(std::unordered_map<std::string, Entry<T>>& map, const std::string& key, T value,
                       std::chrono::milliseconds ttl) {
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
  insert(tokens_, digest(token), user, user.name.empty() ? ttls_.unauthenticated : ttls_.authenticated);
}

std::optional<AuthCache::Decision> AuthCache::decision(const std::string& key) {
  std::lock_guard lock(mu_);
  return lookup(decisions_, key);
}

void AuthCache::putDecision(const std::string& key, const Decision& decision) {
  std::lock_guard lock(mu_);
  insert(decisions_, key, decision, decision.allowed ? ttls_.allowed : ttls_.denied);
}

std::string AuthCache::decisionKey(const UserInfo& user, const RequestInfo& info) {
  // Length-prefixed parts: no two different requests share a key.
  std::string key;
  const auto part = [&key](const std::string& s) {
    key += std::to_string(s.size());
    key += ':';
    key += s;
  };
  part(user.name);
  part(user.uid);
  for (const auto& g : user.groups) part(g);
  key += '|';
  for (const auto& [k, values] : user.extra) {
    part(k);
    for (const auto& v : values) part(v);
    key += ';';
  }
  key += '|';
  for (const auto* s : {&info.verb, &info.api_group, &info.api_version, &info.resource, &info.namespace_, &info.name}) {
    part(*s);
  }
  return key;
}

AuthorizedRead::AuthorizedRead(UpstreamPool& pool, ProxyCredentials& credentials, AuthCache& cache, Identity identity,
                               RequestInfo info, bool protobuf_status, DownstreamStream& stream, Allowed allowed,
                               Forward forward)
    : pool_(pool),
      credentials_(credentials),
      cache_(cache),
      identity_(std::move(identity)),
      info_(std::move(info)),
      protobuf_status_(protobuf_status),
      stream_(stream),
      allowed_(std::move(allowed)),
      forward_(std::move(forward)) {
  next();
}

AuthorizedRead::~AuthorizedRead() {
  if (review_ != nullptr) review_->cancel();
}

void AuthorizedRead::next() {
  if (identity_.kind == Identity::Kind::kToken) {
    if (const auto user = cache_.token(identity_.token)) {
      if (user->name.empty()) return fail(unauthorizedStatus());
      identity_.kind = Identity::Kind::kUser;
      identity_.user = *user;
    } else {
      step_ = Step::kTokenReview;
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("apiVersion");
      w.String("authentication.k8s.io/v1");
      w.Key("kind");
      w.String("TokenReview");
      w.Key("spec");
      w.StartObject();
      w.Key("token");
      writeString(w, identity_.token);
      if (!cache_.audiences().empty()) {
        w.Key("audiences");
        w.StartArray();
        for (const auto& a : cache_.audiences()) writeString(w, a);
        w.EndArray();
      }
      w.EndObject();
      w.EndObject();
      return review("/apis/authentication.k8s.io/v1/tokenreviews", buf.GetString());
    }
  }
  const std::string key = AuthCache::decisionKey(identity_.user, info_);
  if (const auto decision = cache_.decision(key)) {
    if (!decision->allowed) return fail(forbiddenStatus(info_, identity_.user.name, decision->reason));
    info_.user = identity_.user.name;
    return decide(allowed_(info_));
  }
  step_ = Step::kAccessReview;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("apiVersion");
  w.String("authorization.k8s.io/v1");
  w.Key("kind");
  w.String("SubjectAccessReview");
  w.Key("spec");
  w.StartObject();
  w.Key("resourceAttributes");
  w.StartObject();
  const std::pair<const char*, const std::string*> attributes[] = {
      {"namespace", &info_.namespace_}, {"verb", &info_.verb},     {"group", &info_.api_group},
      {"version", &info_.api_version},  {"resource", &info_.resource}, {"name", &info_.name}};
  for (const auto& [name, value] : attributes) {
    if (value->empty()) continue;
    w.Key(name);
    writeString(w, *value);
  }
  w.EndObject();
  const UserInfo& user = identity_.user;
  w.Key("user");
  writeString(w, user.name);
  if (!user.uid.empty()) {
    w.Key("uid");
    writeString(w, user.uid);
  }
  w.Key("groups");
  w.StartArray();
  for (const auto& g : user.groups) writeString(w, g);
  w.EndArray();
  if (!user.extra.empty()) {
    w.Key("extra");
    w.StartObject();
    for (const auto& [k, values] : user.extra) {
      writeString(w, k);
      w.StartArray();
      for (const auto& v : values) writeString(w, v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  review("/apis/authorization.k8s.io/v1/subjectaccessreviews", buf.GetString());
}

void AuthorizedRead::review(const std::string& path, std::string body) {
  RequestHead head;
  head.method = "POST";
  head.path = path;
  credentials_.authorize(head);
  head.headers.push_back({"content-type", "application/json"});
  head.headers.push_back({"accept", "application/json"});
  head.headers.push_back({"user-agent", "kube-cache-proxy/auth"});
  head.headers.push_back({"content-length", std::to_string(body.size())});
  head.content_length = int64_t(body.size());
  review_body_ = std::move(body);
  review_sent_ = 0;
  review_status_ = 0;
  review_answer_.clear();
  review_ = pool_.submit(std::move(head), this);
}

size_t AuthorizedRead::requestBodyReady(bool* eof) {
  *eof = true;
  return review_body_.size() - review_sent_;
}

void AuthorizedRead::pullRequestBody(evbuffer* out, size_t n) {
  evbuffer_add(out, review_body_.data() + review_sent_, n);
  review_sent_ += n;
}

void AuthorizedRead::onUpstreamResponse(const ResponseHead& head, bool) { review_status_ = head.status; }

void AuthorizedRead::onUpstreamData(const uint8_t* data, size_t len) {
  if (review_answer_.size() + len > kMaxReviewBody) {
    review_->cancel();
    onUpstreamError("review answer too large");
    return;
  }
  review_answer_.append(reinterpret_cast<const char*>(data), len);
  review_->consume(len);
}

void AuthorizedRead::onUpstreamError(const std::string& reason) {
  review_ = nullptr;
  if (closed()) return;
  // Nothing decided: kube-apiserver answers the client itself (the request
  // carries the client's identity).
  log::warning("authentication or authorization review failed; forwarding", {{"reason", reason}});
  decide(forward_());
}

void AuthorizedRead::onUpstreamComplete() {
  review_ = nullptr;
  if (closed()) return;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(review_answer_.data(), review_answer_.size());
  const bool ok = (review_status_ == 200 || review_status_ == 201) && !doc.HasParseError() && doc.IsObject() &&
                  doc.HasMember("status") && doc["status"].IsObject();
  if (!ok) {
    onUpstreamError("HTTP " + std::to_string(review_status_) + ": " + review_answer_.substr(0, 200));
    return;
  }
  const auto& status = doc["status"];
  const auto str = [](const rapidjson::Value& o, const char* key) {
    return o.IsObject() && o.HasMember(key) && o[key].IsString() ? std::string(o[key].GetString(), o[key].GetStringLength())
                                                                  : std::string();
  };
  if (step_ == Step::kTokenReview) {
    UserInfo user;
    // With audiences asked for, the token must be meant for one of them (as
    // kube-apiserver's webhook token authenticator requires).
    bool audience_ok = cache_.audiences().empty();
    if (!audience_ok && status.HasMember("audiences") && status["audiences"].IsArray()) {
      for (const auto& a : status["audiences"].GetArray()) {
        if (a.IsString() && std::find(cache_.audiences().begin(), cache_.audiences().end(), a.GetString()) !=
                                cache_.audiences().end()) {
          audience_ok = true;
        }
      }
    }
    if (audience_ok && status.HasMember("authenticated") && status["authenticated"].IsBool() &&
        status["authenticated"].GetBool() && status.HasMember("user") && status["user"].IsObject()) {
      const auto& u = status["user"];
      user.name = str(u, "username");
      user.uid = str(u, "uid");
      if (u.HasMember("groups") && u["groups"].IsArray()) {
        for (const auto& g : u["groups"].GetArray()) {
          if (g.IsString()) user.groups.emplace_back(g.GetString(), g.GetStringLength());
        }
      }
      if (u.HasMember("extra") && u["extra"].IsObject()) {
        for (const auto& e : u["extra"].GetObject()) {
          std::vector<std::string> values;
          if (e.value.IsArray()) {
            for (const auto& v : e.value.GetArray()) {
              if (v.IsString()) values.emplace_back(v.GetString(), v.GetStringLength());
            }
          }
          user.extra.emplace_back(std::string(e.name.GetString(), e.name.GetStringLength()), std::move(values));
        }
        std::sort(user.extra.begin(), user.extra.end());
      }
    }
    cache_.putToken(identity_.token, user);
  } else {
    AuthCache::Decision d;
    d.allowed = status.HasMember("allowed") && status["allowed"].IsBool() && status["allowed"].GetBool();
    d.reason = str(status, "reason");
    cache_.putDecision(AuthCache::decisionKey(identity_.user, info_), d);
  }
  next();
}

void AuthorizedRead::fail(const encoder::Status& status) {
  info_.user = identity_.kind == Identity::Kind::kUser ? identity_.user.name : "";
  audit::cachedRead(info_, status.code == 401 ? "unauthenticated" : "forbid", status.code, 0);
  decide(StaticResponse::sendStatus(stream_, status, protobuf_status_));
}

void AuthorizedRead::abandon() {
  if (review_ != nullptr) review_->cancel();
  review_ = nullptr;
}

}  // namespace kcp::proxy
