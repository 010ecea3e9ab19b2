#include "encoder/status.h"

#include <catch2/catch.hpp>

using kcp::encoder::Status;
using kcp::encoder::statusJson;

// The expected bodies are kube-apiserver's own answers to the same failures.
TEST_CASE("Status bodies match kube-apiserver byte for byte", "[encoder]") {
  Status forbidden{403,
                   "Forbidden",
                   "configmaps is forbidden: User \"no-access\" cannot list resource "
                   "\"configmaps\" in API group \"\" in the namespace \"default\"",
                   {.kind = "configmaps"}};
  CHECK(
      statusJson(forbidden) ==
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps is forbidden: User \"no-access\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"configmaps"},"code":403})"
      "\n");

  Status not_found{
      404, "NotFound", "configmaps \"nope\" not found", {.name = "nope", .kind = "configmaps"}};
  CHECK(
      statusJson(not_found) ==
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},"code":404})"
      "\n");
}

TEST_CASE("Status omits empty fields and carries retryAfterSeconds", "[encoder]") {
  CHECK(
      statusJson({503, "ServiceUnavailable", "upstream unreachable", {}}) ==
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"upstream unreachable","reason":"ServiceUnavailable","code":503})"
      "\n");
  CHECK(
      statusJson({504, "Timeout", "Too large resource version", {.retry_after_seconds = 1}}) ==
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too large resource version","reason":"Timeout","details":{"retryAfterSeconds":1},"code":504})"
      "\n");
}
