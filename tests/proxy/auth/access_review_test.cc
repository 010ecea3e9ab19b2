#include "proxy/auth/access_review.h"

#include <catch2/catch.hpp>

using namespace kcp::proxy;

TEST_CASE("Go's %q", "[access_review]") {
  CHECK(goQuote("team-a") == "\"team-a\"");
  CHECK(goQuote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(goQuote("tab\there\n") == "\"tab\\there\\n\"");
  CHECK(goQuote(std::string("\x01\x7f", 2)) == "\"\\x01\\x7f\"");
  CHECK(goQuote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");  // printable runes stay
  CHECK(goQuote("\xff") == "\"\\xff\"");               // invalid UTF-8 byte
  CHECK(goQuote("a\xc2\xa0z") == "\"a\\u00a0z\"");     // no-break space is not printable
}

TEST_CASE("the attributes of a request: selectors for list and watch", "[access_review]") {
  const UserInfo node{"system:node:n1", "", {"system:nodes", "system:authenticated"}, {}};
  auto info = parseRequestInfo(
      "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&labelSelector=a%3Db&watch=1");
  auto a = requestAttributes(info, node);
  CHECK(a.verb == "watch");
  CHECK(a.field_selector == "spec.nodeName=n1");
  CHECK(a.label_selector == "a=b");
  // A GET of one object has none; nor has the deprecated /watch/ path.
  info = parseRequestInfo("GET", "/api/v1/namespaces/x/pods/p?fieldSelector=spec.nodeName%3Dn1");
  CHECK(requestAttributes(info, node).field_selector.empty());
  info = parseRequestInfo("GET", "/api/v1/watch/namespaces/x/pods?fieldSelector=metadata.name%3Dp");
  CHECK(requestAttributes(info, node).field_selector.empty());
  CHECK(info.name.empty());
  // A list of one name by field selector authorizes as that name.
  info = parseRequestInfo("GET", "/api/v1/namespaces/x/secrets?fieldSelector=metadata.name%3Ds1");
  CHECK(info.name == "s1");
  CHECK(info.field_selector == "metadata.name=s1");
}

TEST_CASE("SubjectAccessReview JSON and its cache key", "[access_review]") {
  AccessAttributes a;
  a.user = UserInfo{"jane", "u1", {"devs"}, {{"scopes", {"x"}}}};
  a.verb = "list";
  a.version = "v1";
  a.resource = "pods";
  a.field_selector = "spec.nodeName=n1";
  CHECK(
      subjectAccessReviewJson(a) ==
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":)"
      R"({"verb":"list","version":"v1","resource":"pods","fieldSelector":{"rawSelector":"spec.nodeName=n1"}},)"
      R"("user":"jane","uid":"u1","groups":["devs"],"extra":{"scopes":["x"]}}})");
  AccessAttributes b = a;
  b.field_selector = "spec.nodeName=n2";
  CHECK(accessKey(a) != accessKey(b));  // the selector is part of the decision
  b = a;
  b.label_selector = "x";
  CHECK(accessKey(a) != accessKey(b));
  AccessAttributes path;
  path.resource_request = false;
  path.verb = "get";
  path.path = "/version";
  path.user.name = "jane";
  CHECK(
      subjectAccessReviewJson(path) ==
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"nonResourceAttributes":)"
      R"({"path":"/version","verb":"get"},"user":"jane","groups":[]}})");
}

TEST_CASE("kube-apiserver's forbidden messages", "[access_review]") {
  AccessAttributes a;
  a.user.name = "team-a-reader";
  a.verb = "list";
  a.version = "v1";
  a.resource = "configmaps";
  a.namespace_ = "default";
  auto s = forbiddenStatus(a, "");
  CHECK(s.code == 403);
  CHECK(s.message ==
        "configmaps is forbidden: User \"team-a-reader\" cannot list resource \"configmaps\" in "
        "API group \"\" in the "
        "namespace \"default\"");
  a.verb = "impersonate";
  a.group = "authentication.k8s.io";
  a.resource = "userextras";
  a.subresource = "scopes";
  a.namespace_.clear();
  a.name = "<x>";
  s = forbiddenStatus(a, "RBAC: <denied>");
  CHECK(s.message ==
        "userextras.authentication.k8s.io \"<x>\" is forbidden: User \"team-a-reader\" cannot "
        "impersonate resource "
        "\"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope: RBAC: "
        "<denied>");
  CHECK(s.details.kind == "userextras");
  CHECK(s.details.group == "authentication.k8s.io");
  CHECK(s.details.name == "<x>");
}
