#include "proxy/auth/impersonation.h"

#include <algorithm>
#include <map>

namespace kcp::proxy {
namespace {

constexpr std::string_view kUserHeader = "impersonate-user";
constexpr std::string_view kUidHeader = "impersonate-uid";
constexpr std::string_view kGroupHeader = "impersonate-group";
constexpr std::string_view kExtraPrefix = "impersonate-extra-";

constexpr const char* kAuthenticated = "system:authenticated";
constexpr const char* kUnauthenticated = "system:unauthenticated";
constexpr const char* kAnonymous = "system:anonymous";
constexpr const char* kNodeNameKey = "authentication.kubernetes.io/node-name";

// The modes, in kube-apiserver's order.
enum Mode { kAssociatedNode, kArbitraryNode, kServiceAccount, kUserInfo, kLegacy, kModes };
constexpr const char* kModeNames[kModes] = {"associated-node", "arbitrary-node", "serviceaccount",
                                            "user-info", ""};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's url.PathUnescape; a bad escape leaves the key as it was.
std::string pathUnescaped(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || hexValue(s[i + 1]) < 0 || hexValue(s[i + 2]) < 0) return s;
    out += char(hexValue(s[i + 1]) << 4 | hexValue(s[i + 2]));
    i += 2;
  }
  return out;
}

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// IsDNS1123Label / IsDNS1123Subdomain.
bool isDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63 || !isLowerAlnum(s.front()) || !isLowerAlnum(s.back()))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isLowerAlnum(c) || c == '-'; });
}
bool isDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    // Subdomain labels may be up to 253 long in apimachinery's regex; only the whole is bounded.
    if (label.empty() || !isLowerAlnum(label.front()) || !isLowerAlnum(label.back()) ||
        !std::all_of(label.begin(), label.end(),
                     [](char c) { return isLowerAlnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// serviceaccount.SplitUsername.
bool splitServiceAccount(const std::string& user, std::string* ns, std::string* name) {
  constexpr std::string_view prefix = "system:serviceaccount:";
  if (!user.starts_with(prefix)) return false;
  const std::string_view rest = std::string_view(user).substr(prefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos || rest.find(':', colon + 1) != std::string_view::npos)
    return false;
  const std::string_view n = rest.substr(0, colon), sa = rest.substr(colon + 1);
  if (!isDns1123Label(n) || !isDns1123Subdomain(sa)) return false;
  *ns = std::string(n);
  *name = std::string(sa);
  return true;
}

// A node's user name ("system:node:<a valid node name>").
bool splitNode(const std::string& user, std::string* node) {
  constexpr std::string_view prefix = "system:node:";
  if (!user.starts_with(prefix) ||
      !isDns1123Subdomain(std::string_view(user).substr(prefix.size())))
    return false;
  *node = user.substr(prefix.size());
  return true;
}

bool onlyName(const WantedUser& w) {
  return w.uid.empty() && w.groups.empty() && w.extra.empty();
}

// validateExtra of constrained impersonation: "" when the extra is acceptable.
std::string extraProblem(const WantedUser& w) {
  for (const auto& [key, values] : w.extra) {
    if (key.empty()) return "impersonating the empty string key in extra is not allowed";
    // IsDomainPrefixedPath: <DNS subdomain>/<HTTP path characters>.
    const size_t slash = key.find('/');
    const bool path_ok =
        slash != std::string::npos && slash + 1 < key.size() &&
        std::all_of(key.begin() + long(slash) + 1, key.end(), [](char c) {
          return std::isalnum(uint8_t(c)) ||
                 std::string_view("/-._~%!$&'()*+,;=:").find(c) != std::string_view::npos;
        });
    if (slash == std::string::npos || slash == 0 || slash + 1 == key.size()) {
      return "impersonating an invalid key in extra is not allowed: extra.key: Invalid value: " +
             goQuote(key) + ": must be a domain-prefixed path (such as \"acme.io/foo\")";
    }
    if (!isDns1123Subdomain(std::string_view(key).substr(0, slash)) || !path_ok) {
      return "impersonating an invalid key in extra is not allowed: extra.key: Invalid value: " +
             goQuote(key.substr(0, slash)) +
             ": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
             "characters, '-' or '.', and must start and end with an alphanumeric character";
    }
    if (std::any_of(key.begin(), key.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return "impersonating a non-lowercase key in extra is not allowed: " + goQuote(key);
    }
    if (values.empty()) return "impersonating empty values in extra is not allowed";
    if (std::find(values.begin(), values.end(), "") != values.end()) {
      return "impersonating the empty string value in extra is not allowed";
    }
  }
  return "";
}

void ensureGroup(UserInfo& u, const std::string& group) {
  if (std::find(u.groups.begin(), u.groups.end(), group) == u.groups.end())
    u.groups.push_back(group);
}

// A mode's checks, run with the answers known so far.
class ModeRun {
 public:
  ModeRun(const UserInfo& requestor, const WantedUser& wanted, const AccessAttributes& request,
          const std::function<std::optional<ReviewAnswer>(const AccessAttributes&)>& answered)
      : requestor_(requestor), wanted_(wanted), request_(request), answered_(answered) {}

  enum class Result { kNotApplicable, kNeedReview, kAllowed, kRefused };
  Result run(int mode) {
    mode_ = mode;
    if (!applies()) return Result::kNotApplicable;
    const bool constrained = mode != kLegacy;
    const std::string verb =
        constrained ? std::string("impersonate:") + kModeNames[mode] : "impersonate";
    if (constrained) {
      AccessAttributes on = request_;
      on.verb = "impersonate-on:" + std::string(kModeNames[mode]) + ":" + request_.verb;
      if (!check(on)) return result_;
    }
    user_ = UserInfo{wanted_.name, wanted_.uid, wanted_.groups, {}};
    for (const auto& [k, v] : wanted_.extra) user_.extra.emplace_back(k, v);
    std::sort(user_.extra.begin(), user_.extra.end());
    // The user's name.
    const std::string name_group = constrained ? "authentication.k8s.io" : "";
    AccessAttributes name = attributes(verb, name_group, "users", wanted_.name);
    std::string node, ns, sa;
    if (constrained && splitNode(wanted_.name, &node)) {
      name.resource = "nodes";
      name.name = node;
      user_.groups = {"system:nodes"};
    }
    if (splitServiceAccount(wanted_.name, &ns, &sa)) {
      name.resource = "serviceaccounts";
      name.namespace_ = ns;
      name.name = sa;
      if (wanted_.groups.empty())
        user_.groups = {"system:serviceaccounts", "system:serviceaccounts:" + ns};
    }
    if (mode == kAssociatedNode)
      name.name = "*";  // valid for every node: the association was checked
    if (!check(name)) return result_;
    if (!wanted_.uid.empty() &&
        !check(attributes(verb, "authentication.k8s.io", "uids", wanted_.uid)))
      return result_;
    if (!checkGroups(verb, name_group, constrained)) return result_;
    if (!checkExtra(verb, constrained)) return result_;
    if (user_.name == kAnonymous) {
      ensureGroup(user_, kUnauthenticated);
    } else if (std::find(user_.groups.begin(), user_.groups.end(), kUnauthenticated) ==
               user_.groups.end()) {
      ensureGroup(user_, kAuthenticated);
    }
    return Result::kAllowed;
  }
  const UserInfo& user() const { return user_; }
  const AccessAttributes& review() const { return review_; }
  const encoder::Status& refusal() const { return refusal_; }

 private:
  bool applies() const {
    std::string node, ns, sa;
    const bool is_node = splitNode(wanted_.name, &node),
               is_sa = splitServiceAccount(wanted_.name, &ns, &sa);
    switch (mode_) {
      case kAssociatedNode: {
        if (!onlyName(wanted_) || !is_node || !splitServiceAccount(requestor_.name, &ns, &sa))
          return false;
        for (const auto& [k, v] : requestor_.extra) {
          if (k == kNodeNameKey) return v.size() == 1 && v[0] == node;
        }
        return false;
      }
      case kArbitraryNode:
        return onlyName(wanted_) && is_node;
      case kServiceAccount:
        return onlyName(wanted_) && is_sa;
      case kUserInfo:
        return !is_node && !is_sa;
      default:
        return true;
    }
  }

  AccessAttributes attributes(const std::string& verb, const std::string& group,
                              const std::string& resource, const std::string& name) const {
    AccessAttributes a;
    a.verb = verb;
    a.group = group;
    a.version = "v1";
    a.resource = resource;
    a.name = name;
    return a;
  }

  // One authorization check: true when allowed; otherwise result_ says why not.
  bool check(AccessAttributes a) {
    a.user = requestor_;
    if (mode_ == kAssociatedNode) {
      // kube-apiserver checks the association itself and lets the
      // authorizer see only which extra keys the service account has.
      std::vector<std::string> keys;
      for (const auto& e : requestor_.extra) keys.push_back(e.first);
      std::sort(keys.begin(), keys.end());
      a.user.extra = {{"authentication.kubernetes.io/associated-node-keys", keys}};
    }
    const auto answer = answered_(a);
    if (!answer) {
      review_ = std::move(a);
      result_ = Result::kNeedReview;
      return false;
    }
    if (answer->allowed) return true;
    std::string message = answer->reason;
    if (!answer->evaluation_error.empty()) {
      message = answer->reason.empty() ? answer->evaluation_error
                                       : answer->evaluation_error + ": " + answer->reason;
    }
    return refuse(a, message);
  }

  bool refuse(const AccessAttributes& a, const std::string& reason) {
    refusal_ = forbiddenStatus(a, reason);
    result_ = Result::kRefused;
    return false;
  }

  bool checkGroups(const std::string& verb, const std::string& group, bool constrained) {
    const auto& groups = wanted_.groups;
    if (groups.empty()) return true;
    AccessAttributes a = attributes(verb, group, "groups", "");
    if (constrained) {
      a.user = requestor_;
      if (std::find(groups.begin(), groups.end(), "") != groups.end()) {
        return refuse(a, "impersonating the empty string group is not allowed");
      }
      if (std::find(groups.begin(), groups.end(), "system:masters") != groups.end()) {
        a.name = "system:masters";
        return refuse(a, "impersonating the system:masters group is not allowed");
      }
      if (groups.size() >= 4 && tryWildcard(a)) return true;
      if (result_ == Result::kNeedReview) return false;
    }
    for (const auto& g : groups) {
      a.name = g;
      if (!check(a)) return false;
    }
    return true;
  }

  bool checkExtra(const std::string& verb, bool constrained) {
    if (wanted_.extra.empty()) return true;
    AccessAttributes a = attributes(verb, "authentication.k8s.io", "userextras", "");
    if (constrained) {
      a.user = requestor_;
      if (const std::string problem = extraProblem(wanted_); !problem.empty())
        return refuse(a, problem);
      size_t values = 0;
      for (const auto& e : wanted_.extra) values += e.second.size();
      if (wanted_.extra.size() >= 4 || values >= 4) {
        a.subresource = "*";
        a.name = "*";
        if (tryWildcard(a)) return true;
        if (result_ == Result::kNeedReview) return false;
      }
    }
    for (const auto& [key, values] : wanted_.extra) {
      a.subresource = key;
      for (const auto& v : values) {
        a.name = v;
        if (!check(a)) return false;
      }
    }
    return true;
  }

  // A "*" check that may spare the one-by-one checks; its refusal is no error.
  bool tryWildcard(AccessAttributes a) {
    const Result before = result_;
    a.name = "*";
    if (check(a)) return true;
    if (result_ == Result::kRefused) result_ = before;
    return false;
  }

  const UserInfo& requestor_;
  const WantedUser& wanted_;
  const AccessAttributes& request_;
  const std::function<std::optional<ReviewAnswer>(const AccessAttributes&)>& answered_;
  int mode_ = kLegacy;
  Result result_ = Result::kNotApplicable;
  UserInfo user_;
  AccessAttributes review_;
  encoder::Status refusal_;
};

// %#v of a *user.DefaultInfo, for kube-apiserver's 400.
std::string goSyntax(const WantedUser& w) {
  const auto strings = [](const std::vector<std::string>& v) {
    if (v.empty()) return std::string("[]string(nil)");
    std::string out = "[]string{";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + goQuote(v[i]);
    return out + "}";
  };
  std::string extra = "map[string][]string(nil)";
  if (!w.extra.empty()) {
    std::map<std::string, std::vector<std::string>> sorted(w.extra.begin(), w.extra.end());
    extra = "map[string][]string{";
    bool first = true;
    for (const auto& [k, v] : sorted) {
      extra += (first ? "" : ", ") + goQuote(k) + ":" + strings(v);
      first = false;
    }
    extra += "}";
  }
  return "&user.DefaultInfo{Name:" + goQuote(w.name) + ", UID:" + goQuote(w.uid) +
         ", Groups:" + strings(w.groups) + ", Extra:" + extra + "}";
}

}  // namespace

bool isImpersonationHeader(std::string_view lower_name) {
  return lower_name == kUserHeader || lower_name == kUidHeader || lower_name == kGroupHeader ||
         lower_name.starts_with(kExtraPrefix);
}

ImpersonationHeaders readImpersonationHeaders(const Headers& headers) {
  ImpersonationHeaders out;
  bool user_seen = false, uid_seen = false, extra_seen = false;
  WantedUser& w = out.wanted;
  for (const auto& h : headers) {
    if (h.name == kUserHeader) {
      if (!user_seen) w.name = h.value;  // the first one, as Header.Get
      user_seen = true;
    } else if (h.name == kUidHeader) {
      if (!uid_seen) w.uid = h.value;
      uid_seen = true;
    } else if (h.name == kGroupHeader) {
      w.groups.push_back(h.value);
    } else if (h.name.starts_with(kExtraPrefix)) {
      extra_seen = true;
      const std::string key = pathUnescaped(h.name.substr(kExtraPrefix.size()));
      auto it = std::find_if(w.extra.begin(), w.extra.end(),
                             [&](const auto& e) { return e.first == key; });
      if (it == w.extra.end()) it = w.extra.insert(w.extra.end(), {key, {}});
      it->second.push_back(h.value);
    }
  }
  const bool has_user = !w.name.empty();
  if (!has_user && (!w.uid.empty() || !w.groups.empty() || extra_seen)) {
    out.present = true;
    out.invalid = encoder::Status{
        400, "BadRequest", "requested " + goSyntax(w) + " without impersonating a user name", {}};
    return out;
  }
  out.present = has_user;
  return out;
}

Headers impersonationHeadersFor(const UserInfo& user) {
  Headers h;
  h.push_back({std::string(kUserHeader), user.name});
  if (!user.uid.empty()) h.push_back({std::string(kUidHeader), user.uid});
  for (const auto& g : user.groups) h.push_back({std::string(kGroupHeader), g});
  for (const auto& [key, values] : user.extra) {
    // client-go's escaping: anything not a token character, '%' and (since
    // header names are case-insensitive and kube-apiserver lower-cases
    // them) upper-case letters become %XX.
    std::string name(kExtraPrefix);
    for (const char c : key) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                         std::string_view("!#$&'*+-.^_`|~").find(c) != std::string_view::npos;
      if (plain) {
        name += c;
      } else {
        static const char kHex[] = "0123456789ABCDEF";
        name += '%';
        name += kHex[uint8_t(c) >> 4];
        name += kHex[uint8_t(c) & 0xF];
      }
    }
    for (const auto& v : values) h.push_back({name, v});
  }
  return h;
}

ImpersonationDecision decideImpersonation(
    const UserInfo& requestor, const WantedUser& wanted, const AccessAttributes& request,
    int preferred_mode, bool unambiguous,
    const std::function<std::optional<ReviewAnswer>(const AccessAttributes&)>& answered) {
  ImpersonationDecision d;
  std::vector<int> order;
  if (preferred_mode >= 0 && preferred_mode < kModes) order.push_back(preferred_mode);
  for (int m = 0; m < kModes; ++m) {
    if (m != preferred_mode) order.push_back(m);
  }
  std::optional<encoder::Status> first_refusal;
  for (const int mode : order) {
    ModeRun run(requestor, wanted, request, answered);
    switch (run.run(mode)) {
      case ModeRun::Result::kNotApplicable:
        continue;
      case ModeRun::Result::kNeedReview:
        d.kind = ImpersonationDecision::Kind::kNeedReview;
        d.review = run.review();
        return d;
      case ModeRun::Result::kRefused:
        if (!first_refusal) first_refusal = run.refusal();
        continue;
      case ModeRun::Result::kAllowed:
        break;
    }
    d.kind = ImpersonationDecision::Kind::kImpersonated;
    d.user = run.user();
    d.mode = mode;
    if (unambiguous && mode != kLegacy && mode != kUserInfo && mode != kServiceAccount) {
      // A node mode: legacy impersonation would make the same name a user
      // without the group system:nodes. If it allows too, kube-apiserver's
      // choice depends on which mode last worked for this requestor.
      ModeRun legacy(requestor, wanted, request, answered);
      switch (legacy.run(kLegacy)) {
        case ModeRun::Result::kNeedReview:
          d.kind = ImpersonationDecision::Kind::kNeedReview;
          d.review = legacy.review();
          return d;
        case ModeRun::Result::kAllowed:
          if (!(legacy.user() == d.user)) d.kind = ImpersonationDecision::Kind::kAmbiguous;
          break;
        default:
          break;
      }
    }
    return d;
  }
  d.kind = ImpersonationDecision::Kind::kRefused;
  d.refusal = first_refusal.value_or(
      encoder::Status{403, "Forbidden", "all impersonation modes failed", {}});
  return d;
}

}  // namespace kcp::proxy
