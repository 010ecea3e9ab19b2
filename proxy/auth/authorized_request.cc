#include "proxy/auth/authorized_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "config/log.h"
#include "proxy/auth/proxy_credentials.h"
#include "proxy/net/static_response.h"
#include "proxy/ops/audit.h"

namespace kcp::proxy {
namespace {

constexpr size_t kMaxReviewBody = 1 << 20;  // a review's answer

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(Writer& w, const std::string& s) {
  w.String(s.data(), rapidjson::SizeType(s.size()));
}

std::string str(const rapidjson::Value& o, const char* key) {
  return o.IsObject() && o.HasMember(key) && o[key].IsString()
             ? std::string(o[key].GetString(), o[key].GetStringLength())
             : std::string();
}

// authentication.k8s.io/v1 UserInfo (a TokenReview's or SelfSubjectReview's).
UserInfo userInfoFrom(const rapidjson::Value& u) {
  UserInfo user;
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
      user.extra.emplace_back(std::string(e.name.GetString(), e.name.GetStringLength()),
                              std::move(values));
    }
    std::sort(user.extra.begin(), user.extra.end());
  }
  return user;
}

std::string tokenReviewJson(const std::string& token, const std::vector<std::string>& audiences) {
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
  writeString(w, token);
  if (!audiences.empty()) {
    w.Key("audiences");
    w.StartArray();
    for (const auto& a : audiences) writeString(w, a);
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

}  // namespace

AuthorizedRequest::AuthorizedRequest(UpstreamPool& pool, ProxyCredentials& credentials,
                                     AuthCache& cache, Checks checks, RequestInfo info,
                                     bool protobuf_status, DownstreamStream& stream,
                                     Decided decided)
    : pool_(pool),
      credentials_(credentials),
      cache_(cache),
      checks_(std::move(checks)),
      info_(std::move(info)),
      protobuf_status_(protobuf_status),
      stream_(stream),
      decided_(std::move(decided)) {
  next();
}

AuthorizedRequest::~AuthorizedRequest() {
  if (review_ != nullptr) review_->cancel();
}

std::optional<ReviewAnswer> AuthorizedRequest::answered(const AccessAttributes& a) {
  const std::string key = accessKey(a);
  if (const auto it = answers_.find(key); it != answers_.end()) return it->second;
  return cache_.decision(key);
}

void AuthorizedRequest::next() {
  // Who asks.
  if (!requestor_) {
    const Identity& id = checks_.identity;
    if (id.kind == Identity::Kind::kToken) {
      const auto user = cache_.token(id.token);
      if (!user) {
        return review(Step::kTokenReview, "/apis/authentication.k8s.io/v1/tokenreviews",
                      tokenReviewJson(id.token, cache_.audiences()));
      }
      if (user->name.empty()) return fail(unauthorizedStatus());
      requestor_ = *user;
    } else if (id.kind == Identity::Kind::kProxy) {
      requestor_ = cache_.self();
      if (!requestor_) {
        return review(Step::kSelfReview, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})");
      }
    } else {
      requestor_ = id.user;
    }
  }
  // Whom it acts as.
  if (!acting_) {
    if (!checks_.impersonate) {
      acting_ = *requestor_;
    } else {
      const auto d = decideImpersonation(
          *requestor_, *checks_.impersonate, requestAttributes(info_, {}),
          checks_.proxy_decides ? cache_.preferredMode(requestor_->name) : -1,
          !checks_.proxy_decides, [this](const AccessAttributes& a) { return answered(a); });
      switch (d.kind) {
        case ImpersonationDecision::Kind::kNeedReview:
          review_key_ = accessKey(d.review);
          return review(Step::kAccessReview, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                        subjectAccessReviewJson(d.review));
        case ImpersonationDecision::Kind::kRefused:
          if (checks_.proxy_decides) {
            info_.user = requestor_->name;
            return fail(d.refusal);
          }
          return forwardAsSent();
        case ImpersonationDecision::Kind::kAmbiguous:
          return forwardAsSent();
        case ImpersonationDecision::Kind::kImpersonated:
          if (checks_.proxy_decides) cache_.setPreferredMode(requestor_->name, d.mode);
          acting_ = d.user;
          info_.impersonator = requestor_->name;
          break;
      }
    }
    info_.user = acting_->name;
  }
  // What it does.
  if (checks_.authorize) {
    const AccessAttributes a = requestAttributes(info_, *acting_);
    const auto answer = answered(a);
    if (!answer) {
      review_key_ = accessKey(a);
      return review(Step::kAccessReview, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    subjectAccessReviewJson(a));
    }
    if (!answer->allowed) {
      // An authorizer's error is kube-apiserver's 500, which it writes itself.
      if (!answer->evaluation_error.empty()) return forwardAsSent();
      return fail(forbiddenStatus(a, answer->reason));
    }
  }
  decide(decided_(true, *acting_));
}

void AuthorizedRequest::forwardAsSent() {
  // A certificate user's impersonating request reaches kube-apiserver as the
  // proxy's, acting as whom the proxy allowed; before that, nobody can decide.
  if (checks_.proxy_decides && !acting_) {
    return fail({503,
                 "ServiceUnavailable",
                 "the kube-apiserver behind kube-cache-proxy is unavailable",
                 {}});
  }
  decide(decided_(false, acting_.value_or(UserInfo{})));
}

void AuthorizedRequest::review(Step step, const std::string& path, std::string body) {
  step_ = step;
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

size_t AuthorizedRequest::requestBodyReady(bool* eof) {
  *eof = true;
  return review_body_.size() - review_sent_;
}

void AuthorizedRequest::pullRequestBody(evbuffer* out, size_t n) {
  evbuffer_add(out, review_body_.data() + review_sent_, n);
  review_sent_ += n;
}

void AuthorizedRequest::onUpstreamResponse(const ResponseHead& head, bool) {
  review_status_ = head.status;
}

void AuthorizedRequest::onUpstreamData(const uint8_t* data, size_t len) {
  if (review_answer_.size() + len > kMaxReviewBody) {
    review_->cancel();
    onUpstreamError("review answer too large");
    return;
  }
  review_answer_.append(reinterpret_cast<const char*>(data), len);
  review_->consume(len);
}

void AuthorizedRequest::onUpstreamError(const std::string& reason) {
  review_ = nullptr;
  if (closed()) return;
  // Nothing decided: kube-apiserver answers the client itself.
  log::warning("authentication or authorization review failed; forwarding", {{"reason", reason}});
  forwardAsSent();
}

void AuthorizedRequest::onUpstreamComplete() {
  review_ = nullptr;
  if (closed()) return;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(review_answer_.data(), review_answer_.size());
  const bool ok = (review_status_ == 200 || review_status_ == 201) && !doc.HasParseError() &&
                  doc.IsObject() && doc.HasMember("status") && doc["status"].IsObject();
  if (!ok) {
    onUpstreamError("HTTP " + std::to_string(review_status_) + ": " +
                    review_answer_.substr(0, 200));
    return;
  }
  const auto& status = doc["status"];
  switch (step_) {
    case Step::kTokenReview: {
      UserInfo user;
      // With audiences asked for, the token must be meant for one of them (as
      // kube-apiserver's webhook token authenticator requires).
      bool audience_ok = cache_.audiences().empty();
      if (!audience_ok && status.HasMember("audiences") && status["audiences"].IsArray()) {
        for (const auto& a : status["audiences"].GetArray()) {
          if (a.IsString() && std::find(cache_.audiences().begin(), cache_.audiences().end(),
                                        a.GetString()) != cache_.audiences().end()) {
            audience_ok = true;
          }
        }
      }
      if (audience_ok && status.HasMember("authenticated") && status["authenticated"].IsBool() &&
          status["authenticated"].GetBool() && status.HasMember("user") &&
          status["user"].IsObject()) {
        user = userInfoFrom(status["user"]);
      }
      cache_.putToken(checks_.identity.token, user);
      if (user.name.empty()) return fail(unauthorizedStatus());
      requestor_ = user;
      break;
    }
    case Step::kSelfReview: {
      if (!status.HasMember("userInfo") || !status["userInfo"].IsObject()) {
        return onUpstreamError("a SelfSubjectReview without userInfo");
      }
      UserInfo self = userInfoFrom(status["userInfo"]);
      cache_.putSelf(self);
      requestor_ = std::move(self);
      break;
    }
    case Step::kAccessReview: {
      ReviewAnswer answer;
      answer.allowed =
          status.HasMember("allowed") && status["allowed"].IsBool() && status["allowed"].GetBool();
      answer.reason = str(status, "reason");
      answer.evaluation_error = str(status, "evaluationError");
      cache_.putDecision(review_key_, answer);
      answers_[review_key_] = std::move(answer);
      break;
    }
  }
  next();
}

void AuthorizedRequest::fail(const encoder::Status& status) {
  audit::cachedRead(info_, status.code == 401 ? "unauthenticated" : "forbid", status.code, 0);
  decide(StaticResponse::sendStatus(stream_, status, protobuf_status_));
}

void AuthorizedRequest::abandon() {
  if (review_ != nullptr) review_->cancel();
  review_ = nullptr;
}

}  // namespace kcp::proxy
