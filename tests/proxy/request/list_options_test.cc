#include "proxy/request/list_options.h"

#include <catch2/catch.hpp>

using kcp::proxy::parseListOptions;

TEST_CASE("list options are read from the query as kube-apiserver reads them", "[proxy]") {
  const auto o = parseListOptions(
      "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1&resourceVersion=10&"
      "resourceVersionMatch=Exact"
      "&limit=500&continue=abc&allowWatchBookmarks=true&timeoutSeconds=30&sendInitialEvents=false&"
      "timeout=1m");
  REQUIRE(o);
  CHECK(o->label_selector == "app=web");
  CHECK(o->field_selector == "spec.nodeName=n1");
  CHECK(o->resource_version == "10");
  CHECK(o->resource_version_match == "Exact");
  CHECK(o->limit == 500);
  CHECK(o->continue_token == "abc");
  CHECK(o->allow_watch_bookmarks);
  CHECK(o->timeout_seconds == 30);
  CHECK(o->send_initial_events == false);
  CHECK(parseListOptions("")->resource_version.empty());
}

TEST_CASE("queries the cache does not reproduce are left to kube-apiserver", "[proxy]") {
  CHECK_FALSE(parseListOptions("pretty=true"));
  CHECK_FALSE(parseListOptions("limit=ten"));
  CHECK_FALSE(parseListOptions("watch=maybe"));
  CHECK_FALSE(parseListOptions("limit=1&limit=2"));
  CHECK_FALSE(parseListOptions("labelSelector=%zz"));
}

TEST_CASE("a value that does not parse leaves the option unset", "[proxy]") {
  CHECK_FALSE(parseListOptions("sendInitialEvents=maybe"));
  CHECK_FALSE(parseListOptions("timeoutSeconds=soon"));
  CHECK(parseListOptions("sendInitialEvents=true")->send_initial_events == true);
  CHECK_FALSE(parseListOptions("watch=1")->send_initial_events.has_value());
}
