#include "proxy/response_form.h"

#include <catch2/catch.hpp>

using kcp::proxy::cacheResponseForm;
using kcp::proxy::RequestHead;
using kcp::proxy::ResponseForm;

namespace {
std::optional<ResponseForm> form(const std::string& accept, const std::string& verb = "list",
                                 const std::string& ua = "client-go") {
  RequestHead h;
  if (!accept.empty()) h.headers.push_back({"accept", accept});
  h.headers.push_back({"user-agent", ua});
  return cacheResponseForm(h, verb);
}
}  // namespace

TEST_CASE("the cache answers in the first form the client accepts that it writes", "[proxy]") {
  CHECK(form("") == ResponseForm::kFull);
  CHECK(form("application/json") == ResponseForm::kFull);
  CHECK(form("application/json;q=0.9") == ResponseForm::kFull);
  CHECK(form("*/*") == ResponseForm::kFull);
  // client-go's default for built-in types: protobuf first, JSON acceptable.
  CHECK(form("application/vnd.kubernetes.protobuf,application/json") == ResponseForm::kFull);
  CHECK_FALSE(form("application/vnd.kubernetes.protobuf"));
  CHECK_FALSE(form("application/json;as=Table;v=v1;g=meta.k8s.io"));
  CHECK_FALSE(form("application/json", "list", "curl/8.0"));
  // client-go's metadata client.
  const std::string meta_list =
      "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
  CHECK(form(meta_list) == ResponseForm::kMetadataOnly);
  const std::string meta_object =
      "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
      "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
  CHECK(form(meta_object, "watch") == ResponseForm::kMetadataOnly);
  CHECK(form(meta_object, "get") == ResponseForm::kMetadataOnly);
  CHECK(form(meta_object, "list") == ResponseForm::kFull);  // the object form is not a list: next entry
  CHECK_FALSE(form("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1"));
}
