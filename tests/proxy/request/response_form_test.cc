#include "proxy/request/response_form.h"

#include <catch2/catch.hpp>

using kcp::cache::Encoding;
using kcp::proxy::cacheResponseForm;
using kcp::proxy::RequestHead;
using kcp::proxy::ResponseForm;

namespace {
std::optional<ResponseForm> form(const std::string& accept, const std::string& verb = "list",
                                 const std::string& ua = "client-go", bool protobuf = true) {
  RequestHead h;
  if (!accept.empty()) h.headers.push_back({"accept", accept});
  h.headers.push_back({"user-agent", ua});
  return cacheResponseForm(h, verb, protobuf);
}
const ResponseForm kJson{Encoding::kJson, false}, kJsonMetadata{Encoding::kJson, true};
const ResponseForm kProtobuf{Encoding::kProtobuf, false},
    kProtobufMetadata{Encoding::kProtobuf, true};
}  // namespace

TEST_CASE("the cache answers in the first form the client accepts that it writes", "[proxy]") {
  CHECK(form("") == kJson);
  CHECK(form("application/json") == kJson);
  CHECK(form("application/json;q=0.9") == kJson);
  CHECK(form("*/*") == kJson);
  // client-go's default for built-in types: protobuf first, JSON acceptable.
  CHECK(form("application/vnd.kubernetes.protobuf,application/json") == kProtobuf);
  CHECK(form("application/vnd.kubernetes.protobuf") == kProtobuf);
  // A resource without a protobuf form (custom resources): its JSON, as kube-apiserver.
  CHECK(form("application/vnd.kubernetes.protobuf,application/json", "list", "client-go", false) ==
        kJson);
  CHECK_FALSE(form("application/vnd.kubernetes.protobuf", "list", "client-go", false));
  CHECK_FALSE(form("application/json;as=Table;v=v1;g=meta.k8s.io"));
  CHECK_FALSE(form("application/yaml"));
  CHECK_FALSE(form("application/json", "list", "curl/8.0"));
  // client-go's metadata client.
  const std::string meta_list =
      "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
  CHECK(form(meta_list) == kProtobufMetadata);
  // Also for custom resources: PartialObjectMetadata is typed, kube-apiserver writes it in
  // protobuf.
  CHECK(form(meta_list, "list", "client-go", false) == kProtobufMetadata);
  const std::string meta_object =
      "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
      "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
  CHECK(form(meta_object, "watch") == kProtobufMetadata);
  CHECK(form(meta_object, "get", "client-go", false) == kProtobufMetadata);
  CHECK(form("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", "get", "client-go",
             false) == kJsonMetadata);
  CHECK(form(meta_object, "list") == kJson);  // the object form is not a list: next entry
  CHECK_FALSE(form("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1"));
}
