#include "proxy/request/request_info.h"

#include <catch2/catch.hpp>

using kcp::proxy::parseRequestInfo;
using kcp::proxy::queryParam;

// Expectations follow kube-apiserver's RequestInfoFactory (and its tests).
TEST_CASE("resource requests: verb, group, version, namespace, resource, name", "[proxy]") {
  struct Case {
    const char* method;
    const char* target;
    const char* verb;
    const char* group;
    const char* version;
    const char* ns;
    const char* resource;
    const char* name;
    const char* sub;
  };
  const Case cases[] = {
      {"GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""},
      {"GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "other", ""},
      {"GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "foo", ""},
      {"HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "foo", ""},
      {"GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=true", "watch", "", "v1", "other", "pods", "",
       ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=false", "list", "", "v1", "other", "pods", "",
       ""},
      {"GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo?watch=true", "get", "", "v1", "other", "pods",
       "foo", ""},
      {"POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", ""},
      {"PUT", "/api/v1/namespaces/other/pods/foo", "update", "", "v1", "other", "pods", "foo", ""},
      {"PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "foo", ""},
      {"DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "foo",
       ""},
      {"DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "", "v1", "other", "pods", "",
       ""},
      {"GET", "/api/v1/namespaces/other/pods/foo/log", "get", "", "v1", "other", "pods", "foo",
       "log"},
      {"PUT", "/api/v1/namespaces/other/finalize", "update", "", "v1", "other", "namespaces",
       "other", "finalize"},
      {"GET", "/api/v1/namespaces/other/status", "get", "", "v1", "other", "namespaces", "other",
       "status"},
      {"GET", "/apis/apps/v1/namespaces/a/deployments/d/scale", "get", "apps", "v1", "a",
       "deployments", "d", "scale"},
      {"GET", "/apis/example.com/v1/widgets", "list", "example.com", "v1", "", "widgets", "", ""},
      {"GET", "/api/v1/nodes/n1", "get", "", "v1", "", "nodes", "n1", ""},
      {"GET", "/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dcm1", "list", "", "v1",
       "a", "configmaps", "cm1", ""},
      {"GET", "/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3D%3Dcm1&watch=1",
       "watch", "", "v1", "a", "configmaps", "cm1", ""},
      {"GET", "/api/v1/namespaces/a/pod%73", "list", "", "v1", "a", "pods", "", ""},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.target);
    const auto info = parseRequestInfo(c.method, c.target);
    CHECK(info.is_resource_request);
    CHECK(info.verb == c.verb);
    CHECK(info.api_group == c.group);
    CHECK(info.api_version == c.version);
    CHECK(info.namespace_ == c.ns);
    CHECK(info.resource == c.resource);
    CHECK(info.name == c.name);
    CHECK(info.subresource == c.sub);
  }
}

TEST_CASE("non-resource requests keep the method as verb", "[proxy]") {
  for (const char* target : {"/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1",
                             "/healthz", "/version", "/openapi/v2", "/api/v1/watch"}) {
    INFO(target);
    const auto info = parseRequestInfo("GET", target);
    CHECK_FALSE(info.is_resource_request);
    CHECK(info.verb == "get");
  }
}

TEST_CASE("query parameters are decoded as Go's url.ParseQuery does", "[proxy]") {
  std::string v;
  CHECK(queryParam("a=1&labelSelector=app%3Dweb%2Ctier+in+(x)&b", "labelSelector", v));
  CHECK(v == "app=web,tier in (x)");
  CHECK(queryParam("a=1&b", "b", v));
  CHECK(v.empty());
  CHECK_FALSE(queryParam("a=1", "c", v));
  CHECK_FALSE(queryParam("a=%zz", "a", v));  // a bad escape is an error, not a value
}
