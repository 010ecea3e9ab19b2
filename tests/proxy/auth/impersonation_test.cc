#include "proxy/auth/impersonation.h"

#include <catch2/catch.hpp>
#include <functional>
#include <map>

using namespace kcp::proxy;

namespace {

// Runs decideImpersonation to its end against `allow` (a stand-in for
// kube-apiserver's authorizers), recording the reviews it asked for.
struct Run {
  std::vector<AccessAttributes> reviews;
  ImpersonationDecision decision;
};

Run run(const UserInfo& requestor, const WantedUser& wanted, const AccessAttributes& request,
        const std::function<bool(const AccessAttributes&)>& allow, int preferred = -1,
        bool unambiguous = true) {
  Run r;
  std::map<std::string, ReviewAnswer> answers;
  for (int i = 0; i < 100; ++i) {
    r.decision = decideImpersonation(requestor, wanted, request, preferred, unambiguous,
                                     [&](const AccessAttributes& a) -> std::optional<ReviewAnswer> {
                                       const auto it = answers.find(accessKey(a));
                                       if (it == answers.end()) return std::nullopt;
                                       return it->second;
                                     });
    if (r.decision.kind != ImpersonationDecision::Kind::kNeedReview) return r;
    const AccessAttributes& a = r.decision.review;
    REQUIRE(answers.count(accessKey(a)) == 0);  // never asks twice
    r.reviews.push_back(a);
    answers[accessKey(a)] = ReviewAnswer{allow(a), "", ""};
  }
  FAIL("no decision after 100 reviews");
  return r;
}

UserInfo gateway() {
  return UserInfo{"gateway", "", {"system:authenticated"}, {}};
}

AccessAttributes listConfigmaps() {
  AccessAttributes a;
  a.verb = "list";
  a.version = "v1";
  a.resource = "configmaps";
  a.namespace_ = "default";
  a.label_selector = "app=web";
  return a;
}

bool is(const AccessAttributes& a, const std::string& verb, const std::string& group,
        const std::string& resource, const std::string& name) {
  return a.verb == verb && a.group == group && a.resource == resource && a.name == name;
}

}  // namespace

TEST_CASE("impersonation headers are read as kube-apiserver reads them", "[impersonation]") {
  Headers h = {{"accept", "application/json"}};
  CHECK_FALSE(readImpersonationHeaders(h).present);

  h = {{"impersonate-user", "jane"},
       {"impersonate-user", "ignored"},
       {"impersonate-group", "a"},
       {"impersonate-group", "b"},
       {"impersonate-uid", "42"},
       {"impersonate-extra-example.com%2fscopes", "x"},
       {"impersonate-extra-example.com%2Fscopes", "y"},
       {"impersonate-extra-bad%zz", "z"}};
  const auto r = readImpersonationHeaders(h);
  REQUIRE(r.present);
  CHECK_FALSE(r.invalid);
  CHECK(r.wanted.name == "jane");
  CHECK(r.wanted.uid == "42");
  CHECK(r.wanted.groups == std::vector<std::string>{"a", "b"});
  REQUIRE(r.wanted.extra.size() == 2);
  CHECK(r.wanted.extra[0].first == "example.com/scopes");  // one key, however it was escaped
  CHECK(r.wanted.extra[0].second == std::vector<std::string>{"x", "y"});
  CHECK(r.wanted.extra[1].first == "bad%zz");  // a bad escape is kept as it was

  // A group without a user: kube-apiserver's 400, its message a Go %#v.
  const auto bad =
      readImpersonationHeaders({{"impersonate-group", "devs"}, {"impersonate-extra-k", "v"}});
  REQUIRE(bad.invalid);
  CHECK(bad.invalid->code == 400);
  CHECK(bad.invalid->reason == "BadRequest");
  CHECK(bad.invalid->message ==
        "requested &user.DefaultInfo{Name:\"\", UID:\"\", Groups:[]string{\"devs\"}, "
        "Extra:map[string][]string{\"k\":[]string{\"v\"}}} without impersonating a user name");
  // An empty user with nothing else is no impersonation at all.
  CHECK_FALSE(readImpersonationHeaders({{"impersonate-user", ""}}).present);
}

TEST_CASE("the headers that impersonate a user exactly", "[impersonation]") {
  const UserInfo u{
      "jane", "42", {"devs", "system:authenticated"}, {{"Example.com/Scopes", {"a", "b"}}}};
  const Headers h = impersonationHeadersFor(u);
  const auto back = readImpersonationHeaders(h);
  REQUIRE(back.present);
  CHECK(back.wanted.name == "jane");
  CHECK(back.wanted.uid == "42");
  CHECK(back.wanted.groups ==
        u.groups);  // system:authenticated named too: no mode adds or replaces groups
  REQUIRE(back.wanted.extra.size() == 1);
  CHECK(back.wanted.extra[0].first ==
        "Example.com/Scopes");  // upper case survives lower-casing as %XX
  for (const auto& header : h) CHECK(isImpersonationHeader(header.name));
}

TEST_CASE("legacy impersonation of a user, after the constrained user-info mode",
          "[impersonation]") {
  WantedUser jane{"jane", "", {}, {}};
  const auto r = run(gateway(), jane, listConfigmaps(), [](const AccessAttributes& a) {
    return is(a, "impersonate", "", "users", "jane");
  });
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.mode == 4);
  CHECK(r.decision.user == UserInfo{"jane", "", {"system:authenticated"}, {}});
  REQUIRE(r.reviews.size() == 2);
  // user-info first: may the gateway list configmaps while impersonating? With the request's
  // selectors.
  CHECK(r.reviews[0].verb == "impersonate-on:user-info:list");
  CHECK(r.reviews[0].resource == "configmaps");
  CHECK(r.reviews[0].label_selector == "app=web");
  CHECK(r.reviews[0].user.name == "gateway");
  CHECK(is(r.reviews[1], "impersonate", "", "users", "jane"));
}

TEST_CASE("a refusal is the first mode's error, or the preferred mode's", "[impersonation]") {
  WantedUser jane{"jane", "", {}, {}};
  const auto never = [](const AccessAttributes&) { return false; };
  auto r = run(gateway(), jane, listConfigmaps(), never);
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kRefused);
  CHECK(r.decision.refusal.code == 403);
  CHECK(r.decision.refusal.message ==
        "configmaps is forbidden: User \"gateway\" cannot impersonate-on:user-info:list resource "
        "\"configmaps\" in "
        "API group \"\" in the namespace \"default\"");
  r = run(gateway(), jane, listConfigmaps(), never, /*preferred=legacy*/ 4, false);
  CHECK(r.decision.refusal.message ==
        "users \"jane\" is forbidden: User \"gateway\" cannot impersonate resource \"users\" in "
        "API group \"\" at "
        "the cluster scope");
  CHECK(r.decision.refusal.details.kind == "users");
}

TEST_CASE("constrained user-info impersonation with groups, uid and extra", "[impersonation]") {
  WantedUser w{"jane", "42", {"a", "b", "c", "d"}, {{"example.com/scopes", {"x"}}}};
  const auto r = run(gateway(), w, listConfigmaps(), [](const AccessAttributes& a) {
    if (a.verb == "impersonate-on:user-info:list") return true;
    if (a.verb != "impersonate:user-info" || a.group != "authentication.k8s.io") return false;
    return a.resource == "users" || a.resource == "uids" ||
           (a.resource == "groups" && a.name == "*") ||
           (a.resource == "userextras" && a.subresource == "example.com/scopes");
  });
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.mode == 3);
  CHECK(r.decision.user.groups ==
        std::vector<std::string>{"a", "b", "c", "d", "system:authenticated"});
  CHECK(r.decision.user.uid == "42");
  // Four groups: one "*" review spares the four.
  int group_reviews = 0;
  for (const auto& a : r.reviews) group_reviews += a.resource == "groups";
  CHECK(group_reviews == 1);
}

TEST_CASE("constrained modes refuse system:masters and bad extra keys; legacy does not",
          "[impersonation]") {
  const auto constrained_only = [](const AccessAttributes& a) { return a.verb != "impersonate"; };
  auto r = run(gateway(), WantedUser{"jane", "", {"system:masters"}, {}}, listConfigmaps(),
               constrained_only);
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kRefused);
  CHECK(r.decision.refusal.message.ends_with(
      "impersonating the system:masters group is not allowed"));
  r = run(gateway(), WantedUser{"jane", "", {}, {{"scopes", {"x"}}}}, listConfigmaps(),
          constrained_only);
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kRefused);
  CHECK(r.decision.refusal.message.find("must be a domain-prefixed path") != std::string::npos);
  r = run(gateway(), WantedUser{"jane", "", {"system:masters"}, {{"scopes", {"x"}}}},
          listConfigmaps(), [](const AccessAttributes& a) { return a.verb == "impersonate"; });
  CHECK(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.mode == 4);
}

TEST_CASE("service accounts get their groups; anonymous is unauthenticated", "[impersonation]") {
  auto r = run(gateway(), WantedUser{"system:serviceaccount:ns1:bot", "", {}, {}}, listConfigmaps(),
               [](const AccessAttributes& a) { return a.verb == "impersonate"; });
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.user.groups == std::vector<std::string>{"system:serviceaccounts",
                                                           "system:serviceaccounts:ns1",
                                                           "system:authenticated"});
  // Asked as the service account in its namespace; the serviceaccount mode was tried first.
  CHECK(r.reviews.front().verb == "impersonate-on:serviceaccount:list");
  CHECK(r.reviews.back().resource == "serviceaccounts");
  CHECK(r.reviews.back().namespace_ == "ns1");
  CHECK(r.reviews.back().name == "bot");

  r = run(gateway(), WantedUser{"system:anonymous", "", {}, {}}, listConfigmaps(),
          [](const AccessAttributes& a) { return a.verb == "impersonate"; });
  CHECK(r.decision.user.groups == std::vector<std::string>{"system:unauthenticated"});
}

TEST_CASE("a node: the node modes give it system:nodes; with legacy allowing too it is ambiguous",
          "[impersonation]") {
  const WantedUser node{"system:node:node-1", "", {}, {}};
  const auto arbitrary = [](const AccessAttributes& a) {
    return a.verb == "impersonate-on:arbitrary-node:list" ||
           (a.verb == "impersonate:arbitrary-node" && a.resource == "nodes" && a.name == "node-1");
  };
  auto r = run(gateway(), node, listConfigmaps(), arbitrary);
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.user.groups == std::vector<std::string>{"system:nodes", "system:authenticated"});

  r = run(gateway(), node, listConfigmaps(),
          [&](const AccessAttributes& a) { return arbitrary(a) || a.verb == "impersonate"; });
  CHECK(r.decision.kind == ImpersonationDecision::Kind::kAmbiguous);
  // Where only the proxy decides, kube-apiserver's order decides.
  r = run(
      gateway(), node, listConfigmaps(),
      [&](const AccessAttributes& a) { return arbitrary(a) || a.verb == "impersonate"; }, -1,
      false);
  CHECK(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.mode == 1);
}

TEST_CASE("associated-node: a service account impersonates the node its pod runs on",
          "[impersonation]") {
  const UserInfo agent{"system:serviceaccount:kube-system:agent",
                       "u1",
                       {"system:serviceaccounts"},
                       {{"authentication.kubernetes.io/node-name", {"node-1"}},
                        {"authentication.kubernetes.io/pod-name", {"agent-xyz"}}}};
  const auto r = run(agent, WantedUser{"system:node:node-1", "", {}, {}}, listConfigmaps(),
                     [](const AccessAttributes& a) {
                       return a.verb.find("associated-node") != std::string::npos;
                     });
  REQUIRE(r.decision.kind == ImpersonationDecision::Kind::kImpersonated);
  CHECK(r.decision.mode == 0);
  CHECK(r.decision.user.name == "system:node:node-1");
  // The authorizer sees which extra keys the account has, not their values, and "*" for the node.
  REQUIRE(r.reviews.size() >= 2);
  CHECK(r.reviews[0].user.extra ==
        std::vector<std::pair<std::string, std::vector<std::string>>>{
            {"authentication.kubernetes.io/associated-node-keys",
             {"authentication.kubernetes.io/node-name", "authentication.kubernetes.io/pod-name"}}});
  CHECK(r.reviews[1].resource == "nodes");
  CHECK(r.reviews[1].name == "*");
  // Another node is not its own: the mode does not apply.
  const auto other = run(agent, WantedUser{"system:node:node-2", "", {}, {}}, listConfigmaps(),
                         [](const AccessAttributes& a) {
                           return a.verb.find("associated-node") != std::string::npos;
                         });
  CHECK(other.decision.kind == ImpersonationDecision::Kind::kRefused);
}
